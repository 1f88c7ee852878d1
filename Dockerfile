# Build stage: a C compiler so the install compiles the routing engine (mypyc, see setup.py).
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY core core
COPY rules rules
COPY connectors connectors
COPY router router
COPY store store
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[postgres,rabbit]'

# Runtime stage: the wheels only, no compiler.
FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'cairn[postgres,rabbit]' \
    && rm -rf /wheels
USER nobody
EXPOSE 8000
CMD ["cairn", "serve"]
