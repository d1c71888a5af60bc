# syntax=docker/dockerfile:1
# Build with Bun, ship only the compiled binary on a small glibc base.

FROM oven/bun:1 AS build
WORKDIR /app
COPY package.json bun.lock ./
# Without the postinstall: what it prepares for runs from source needs the sources,
# copied below, and build.ts prepares the embedded database's seed itself.
RUN bun install --frozen-lockfile --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
# The web app, bundled into the binary, and the typed client it uses.
COPY web ./web
COPY client ./client
COPY scripts ./scripts
COPY drizzle ./drizzle
RUN bun scripts/build.ts /app/chatbot-api && mkdir -p /app/data

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
WORKDIR /app
COPY --from=build --chown=nonroot:nonroot /app/chatbot-api /app/chatbot-api
# Embedded PGlite keeps its files here when DATABASE_URL is unset.
COPY --from=build --chown=nonroot:nonroot /app/data /app/data
USER nonroot
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8000
EXPOSE 8000
VOLUME ["/app/data"]
STOPSIGNAL SIGTERM
# The base has no shell or curl: the binary probes its own /api/health/.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/app/chatbot-api", "healthcheck"]
ENTRYPOINT ["/app/chatbot-api"]
