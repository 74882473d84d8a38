# chroma-init + Chroma + nginx in one container: Chroma over HTTPS on port 8443.
#
#   docker build -t chroma-init .
#   docker run -d --name chroma -p 8443:8443 -v chroma-data:/data -v chroma-certs:/certs chroma-init
#
# The steps are those of compose/quickstart (which the end-to-end tests run): the same Debian 12
# packages, the same Node.js >= 20, the same pinned npm packages, the same nginx.conf template,
# the same compose/init.json; only the paths differ (/data, /certs, /etc/chroma-init,
# /run/chroma-init: the defaults of compose/init.json). Base: node:20-bookworm-slim, i.e.
# debian:12-slim with Node.js 20 (see README, "Docker", for why not chromadb/chroma).

# ---- 1. build chroma-init on Debian 12 ------------------------------------
FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config libuv1-dev libjansson-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt /src/
COPY cmd /src/cmd
COPY include /src/include
COPY src /src/src
COPY compose /src/compose
RUN cmake -S /src -B /build -DCHROMA_INIT_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build /build -j "$(nproc)" --target chroma-init chroma_init_tls \
 && strip /build/chroma-init \
 && strip --strip-unneeded /build/chroma-init-tls.so \
 && mkdir -p /out \
 && /src/compose/render-nginx-conf /out/nginx.conf /certs 8443 8000 /run/chroma-init

# ---- 2. Chroma from npm, pinned (newer bindings need glibc >= 2.38; Debian 12 has 2.36) ----
FROM node:20-bookworm-slim AS chroma
WORKDIR /opt/chroma
RUN echo '{"name":"chroma-init-chroma","private":true}' >package.json \
 && npm install --no-audit --no-fund --save-exact chromadb@3.0.6 \
        chromadb-js-bindings-linux-x64-gnu@1.0.1 \
 && npm cache clean --force

# ---- 3. the image ---------------------------------------------------------
FROM node:20-bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        nginx-light libuv1 libjansson4 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/chroma-init /usr/local/bin/chroma-init
# OpenSSL (certgen, https:// probes) is in this module, found from the binary at ../lib/chroma-init/.
COPY --from=build /build/chroma-init-tls.so /usr/local/lib/chroma-init/chroma-init-tls.so
COPY --from=chroma /opt/chroma /opt/chroma
COPY compose/init.json /etc/chroma-init/init.json
COPY --from=build /out/nginx.conf /etc/chroma-init/nginx.conf
ENV PATH=/opt/chroma/node_modules/.bin:$PATH \
    CHROMA_DATA=/data CHROMA_CERTS=/certs CHROMA_INIT_ETC=/etc/chroma-init \
    CHROMA_INIT_STATE=/run/chroma-init CHROMA_DOMAIN=localhost
RUN mkdir -p /data /certs /run/chroma-init
VOLUME /data /certs
EXPOSE 8443
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["chroma-init", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["chroma-init", "--config", "/etc/chroma-init/init.json"]
