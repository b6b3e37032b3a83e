# rechroma's web server on the CPU. The install steps are the Makefile's (make serve):
# the pinned versions of requirements.lock, then the project itself without dependencies.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.lock pyproject.toml README.md ./
COPY src ./src
# The lock pins torch==2.13.0+cpu; PyTorch's CPU wheel index provides it.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
        -r requirements.lock \
    && pip install --no-cache-dir --no-deps -e . \
    && pip install --no-cache-dir --no-deps lpips==0.1.4 \
    && useradd --create-home --uid 10001 rechroma

USER rechroma
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4).status != 200)"
CMD ["rechroma", "serve", "--host", "0.0.0.0", "--port", "8000"]
