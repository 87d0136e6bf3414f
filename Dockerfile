# The brokerbench image: `docker run brokerbench:0.1.0 worker|merge|scenario|compare ...` runs
# bin/brokerbench.js, the same program as `npx brokerbench`. The Kubernetes Jobs (deploy/kubernetes/)
# and the `workers` profile of docker-compose.yml run it.
#   docker build -t brokerbench:0.1.0 .
# tsx runs the TypeScript sources and is a runtime dependency, so the dev dependencies stay out.
FROM node:20-slim

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY adapters ./adapters
COPY scenarios ./scenarios
# Where user 1000 writes: a plain `scenario` run's result files (/app/results), and the workers' parts
# and the merged results (/data). A named volume mounted on /data starts as a copy of this folder,
# owned alike; a Kubernetes volume does not, and the pods' fsGroup sees to it there.
RUN mkdir -p results /data/parts /data/results && chown -R 1000:1000 results /data

# The base image's `node` user, by number so Kubernetes' runAsNonRoot can check it is not root.
USER 1000:1000
ENTRYPOINT ["node", "bin/brokerbench.js"]
CMD ["--help"]
