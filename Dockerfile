# rechroma's web server on the CPU, from a wheel (no editable install) with only what
# serving needs (requirements-serve.lock: no training, test or Ray packages).
# The base image is pinned by digest (python 3.11.10-slim-bookworm), so a rebuild gets
# the same system; bump the tag and digest together.
ARG BASE=python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

FROM ${BASE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation \
        "setuptools>=77" wheel \
    && pip wheel --no-cache-dir --no-deps --no-build-isolation -w /dist .

FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements-serve.lock ./
COPY --from=wheel /dist /dist
# The lock pins torch==2.13.0+cpu; PyTorch's CPU wheel index provides it.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
        -r requirements-serve.lock \
    && pip install --no-cache-dir --no-deps /dist/rechroma-*.whl \
    && rm -rf /dist \
    && useradd --create-home --uid 10001 rechroma

USER rechroma
# The network runs on ONNX Runtime from a graph exported once per weights file: export
# it into the image's cache now, so that a container answers from its first second.
RUN python -c "from rechroma.inference import Colorizer; Colorizer.load(runtime='onnx')"
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4).status != 200)"
CMD ["rechroma", "serve", "--host", "0.0.0.0", "--port", "8000"]
