# Build: a static binary, no cgo.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/pushproxy ./cmd/pushproxy

# Run: distroless static (CA certificates, tzdata, no shell), non-root.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pushproxy /usr/local/bin/pushproxy
USER 65532:65532
EXPOSE 8570
# No shell in the image: the health check is a subcommand of the binary.
# --url rather than --config: a broken config update must not fail the check
# of a process still serving with its last good configuration.
HEALTHCHECK --interval=10s --timeout=3s CMD ["/usr/local/bin/pushproxy", "healthcheck", "--url", "http://127.0.0.1:8570"]
ENTRYPOINT ["/usr/local/bin/pushproxy"]
CMD ["serve", "--config", "/etc/pushproxy/config.yaml"]
