"""The dashboard under `/ui/`: server-rendered pages over the same services and policies as the
API, for lesson owners, reviewers and compliance staff."""
