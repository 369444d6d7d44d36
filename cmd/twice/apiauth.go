package main

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// apiTokenEnv names the environment variable that, when set, makes the
// watch's HTTP API require "Authorization: Bearer TOKEN".
const apiTokenEnv = "TWICE_API_TOKEN"

// apiAuth wraps the watch's HTTP API so that every request but the
// probes' (/healthz, /readyz: kubelets and container runtimes send no
// token) must carry "Authorization: Bearer token"; others get 401. An
// empty token leaves h open.
func apiAuth(h http.Handler, token string) http.Handler {
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/readyz":
			h.ServeHTTP(w, r)
			return
		}
		got := []byte(strings.TrimSpace(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="twice"`)
			http.Error(w, "unauthorized: this API wants Authorization: Bearer $"+apiTokenEnv, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
