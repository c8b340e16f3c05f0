# syntax=docker/dockerfile:1
# cnm-policy sidecar image: docker build -t cnm-policy:0.1.0 .
#   docker run --rm --read-only -p 9090:9090 cnm-policy:0.1.0            # the default bundle
#   docker run --rm --read-only -v $PWD/policies/cnm:/etc/cnm-policy/bundle:ro \
#     cnm-policy:0.1.0 serve --policies /etc/cnm-policy/bundle
# Non-root, nothing written to the root filesystem (run it --read-only); decisions on
# 127.0.0.1:50051 (a pod's containers share it), the ops listener on :9090. docs/operations.md.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# --- build: the wheel from this checkout, installed into a venv with its dependencies --------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY policies ./policies
COPY proto ./proto
# xds-protos (Envoy's ext_authz stubs) ships stale copies of opentelemetry-proto's modules over
# the real ones: reinstalling opentelemetry-proto last keeps OTLP export working (the Makefile
# does the same), and importing the exporter proves it.
RUN python -m venv /opt/cnm-policy \
    && /opt/cnm-policy/bin/pip wheel --no-deps -w /dist . \
    && /opt/cnm-policy/bin/pip install /dist/cnm_policy-*.whl \
    && /opt/cnm-policy/bin/pip install --force-reinstall --no-deps \
       "opentelemetry-proto==$(/opt/cnm-policy/bin/python -c 'import importlib.metadata as m; print(m.version("opentelemetry-proto"))')" \
    && /opt/cnm-policy/bin/python -c 'import opentelemetry.exporter.otlp.proto.http.trace_exporter' \
    && /opt/cnm-policy/bin/cnm-policy --version

# --- runtime: the venv, the default bundle, an unprivileged user --------------------------
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 cnm-policy \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin cnm-policy \
    && mkdir -p /var/lib/cnm-policy \
    && chown 10001:10001 /var/lib/cnm-policy
COPY --from=build /opt/cnm-policy /opt/cnm-policy
# The default bundle: `./policies/cnm` of the working directory is what `serve` loads when
# neither --policies nor --bundle-url is given; mount over it, or pass either flag.
WORKDIR /srv/cnm-policy
COPY policies/cnm ./policies/cnm
ENV PATH=/opt/cnm-policy/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CNM_POLICY_OPS_LISTEN=0.0.0.0:9090 \
    CNM_POLICY_LOG_FORMAT=json
USER 10001:10001
EXPOSE 50051 9090
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["cnm-policy", "healthcheck"]
ENTRYPOINT ["cnm-policy"]
CMD ["serve"]
