FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY rules rules
COPY connectors connectors
COPY router router
COPY store store
RUN pip install --no-cache-dir '.[postgres,rabbit]'
USER nobody
EXPOSE 8000
CMD ["cairn", "serve"]
