// Package deploy holds the example deployment of twice with Docker and
// Kubernetes: twice.yaml here, k8s/, the repo root's docker-compose.yml and
// Dockerfile, and what watches it in production: a Grafana dashboard
// (grafana/) and Prometheus alerting rules with their unit tests
// (prometheus/). It has no code; its tests check that those files agree
// with each other and with the metrics a real `twice watch` serves.
package deploy
