// Package deploy holds the example deployment of twice with Docker:
// twice.yaml here, the repo root's docker-compose.yml and Dockerfile. It has
// no code; its tests check that those files agree with each other.
package deploy
