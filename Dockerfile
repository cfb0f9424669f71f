# The broker image: compiled JavaScript on Node 20 (Debian 12, whose glibc the bundled uWebSockets.js build
# needs). Build: docker build -t logbroker . ; run: docker run -p 8080:8080 -v broker-data:/data logbroker
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workers ./workers
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production BROKER_COMPILED=1 BROKER_DATA_DIR=/data BROKER_PORT=8080
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
RUN mkdir -p /data && chown node:node /data
VOLUME /data
EXPOSE 8080 7946/tcp 7946/udp
USER node
ENTRYPOINT ["node", "bin/broker.mjs"]
CMD ["start", "--host", "0.0.0.0"]
