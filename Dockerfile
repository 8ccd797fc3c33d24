# typogate serve in a container: the policy service (10040), the milter (10041) and the web
# interface (8025), with the store on the volume /var/lib/typogate (docs/install.md).
#
#   docker build -t typogate .
#   docker run -d --name typogate -v typogate:/var/lib/typogate \
#       --add-host host.docker.internal:host-gateway \
#       -p 127.0.0.1:10040:10040 -p 127.0.0.1:10041:10041 -p 127.0.0.1:8025:8025 typogate
#   docker logs typogate          (the admin account's password, on the first start)
#
# Your configuration replaces the image's: -v /etc/typogate:/etc/typogate:ro. Notices go
# to the host's MTA (host.docker.internal:25). The container has no Postfix queue, so held
# mail is released where Postfix runs (typogate release there, on the same store).

FROM debian:bookworm-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev build-essential libmilter-dev \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN python3 -m venv /opt/typogate \
    && /opt/typogate/bin/pip install --no-cache-dir "/src[milter]"

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 libmilter1.0.1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --home-dir /var/lib/typogate --create-home typogate
COPY --from=build /opt/typogate /opt/typogate
COPY packaging/docker/typogate.toml /etc/typogate/typogate.toml
ENV TYPOGATE_CONFIG=/etc/typogate/typogate.toml PATH=/opt/typogate/bin:$PATH
VOLUME /var/lib/typogate
EXPOSE 10040 10041 8025
USER typogate
HEALTHCHECK --interval=30s --timeout=5s \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8025/health', timeout=4)"]
ENTRYPOINT ["typogate"]
CMD ["serve"]
