# twice, the sidecar: `docker compose up` builds it from this file (see
# docker-compose.yml), or: docker build -t twice . && docker run twice audit ...
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The version `twice --version` prints: docker build --build-arg
# VERSION=$(git describe --tags --always --dirty) . (the build context has
# no .git for Go to read it from).
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/twice ./cmd/twice \
	&& mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/twice /usr/local/bin/twice
# Owned by nonroot, so that a fresh named volume mounted here is writable.
COPY --from=build --chown=65532:65532 /out/state /var/lib/twice
USER 65532:65532
VOLUME /var/lib/twice
EXPOSE 8080
# No shell or curl in the image: twice checks itself (GET /healthz on the
# watch.listen of the config the default CMD runs with).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
	CMD ["/usr/local/bin/twice", "healthcheck", "--config", "/etc/twice/twice.yaml"]
ENTRYPOINT ["/usr/local/bin/twice"]
CMD ["watch", "--config", "/etc/twice/twice.yaml"]
