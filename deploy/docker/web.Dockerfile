# The sales cockpit's image (apps/web, package crm_web), built from the repository root:
#   docker build -f deploy/docker/web.Dockerfile -t crm-web .
# Only the cockpit and its HTTP client go in: it imports no service (import-linter checks).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON_PREFERENCE=only-system \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
# The lock covers the whole workspace, so every member's pyproject must be present; only
# apps/web is installed.
COPY pyproject.toml uv.lock ./
COPY contracts/ contracts/
COPY libs/ libs/
COPY services/ services/
COPY apps/ apps/
COPY bench/ bench/
RUN uv sync --frozen --no-dev --no-editable --package crm-web

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="crm-web" \
      org.opencontainers.image.description="CRM activity backbone: the sales cockpit"
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 crm \
    && useradd --system --uid 10001 --gid crm --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin crm
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000
ENTRYPOINT ["python", "-m", "crm_web", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8000"]
