// Package registrytest is a minimal, in-memory Confluent-compatible
// schema registry for tests: enough of the REST API for a serializer
// client to register schemas (POST /subjects/{subject}/versions) and for
// twice to read them (GET /schemas/ids/{id}, GET
// /subjects/{subject}/versions/{version}). Schemas are numbered from 1 in
// the order they are first registered; the same schema text and type
// registered again, under any subject, keeps its id, as in Confluent's.
//
// It stands in for a real registry because no registry that runs without
// a container could be fetched here (Apicurio's app is a Quarkus build,
// not a runnable jar on Maven Central); the values the tests read are
// still written by a real serializer client.
package registrytest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Reference is a schema reference as the registry's API writes it.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// Schema is a registered schema.
type Schema struct {
	Schema     string      `json:"schema"`
	SchemaType string      `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
}

type version struct {
	id  int
	ver int
}

// Registry is the registry's state and its HTTP handler.
type Registry struct {
	// Username and Password, when Username is set, are required as
	// HTTP basic auth of every request.
	Username, Password string

	mu       sync.Mutex
	byID     []Schema // id-1
	subjects map[string][]version

	lookups atomic.Int64
}

// New returns an empty Registry.
func New() *Registry { return &Registry{subjects: map[string][]version{}} }

// Start serves r on a loopback port until tb ends and returns its URL.
func Start(tb testing.TB, r *Registry) string {
	tb.Helper()
	srv := httptest.NewServer(r)
	tb.Cleanup(srv.Close)
	return srv.URL
}

// Lookups returns how many GET /schemas/ids/{id} requests were answered.
func (r *Registry) Lookups() int64 { return r.lookups.Load() }

// Register registers s under subject and returns its id.
func (r *Registry) Register(subject string, s Schema) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.SchemaType == "AVRO" {
		s.SchemaType = ""
	}
	id := 0
	for i, have := range r.byID {
		if have.Schema == s.Schema && have.SchemaType == s.SchemaType && sameRefs(have.References, s.References) {
			id = i + 1
		}
	}
	if id == 0 {
		r.byID = append(r.byID, s)
		id = len(r.byID)
	}
	vs := r.subjects[subject]
	for _, v := range vs {
		if v.id == id {
			return id
		}
	}
	r.subjects[subject] = append(vs, version{id: id, ver: len(vs) + 1})
	return id
}

func sameRefs(a, b []Reference) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ServeHTTP answers the registry's API.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.Username != "" {
		u, p, ok := req.BasicAuth()
		if !ok || u != r.Username || p != r.Password {
			writeError(w, http.StatusUnauthorized, 40101, "Unauthorized")
			return
		}
	}
	parts := strings.Split(strings.Trim(req.URL.EscapedPath(), "/"), "/")
	for i, p := range parts {
		parts[i], _ = url.PathUnescape(p)
	}
	switch {
	case req.Method == http.MethodGet && len(parts) == 3 && parts[0] == "schemas" && parts[1] == "ids":
		r.lookups.Add(1)
		id, _ := strconv.Atoi(parts[2])
		r.mu.Lock()
		defer r.mu.Unlock()
		if id < 1 || id > len(r.byID) {
			writeError(w, http.StatusNotFound, 40403, "Schema "+parts[2]+" not found")
			return
		}
		writeJSON(w, r.byID[id-1])
	case req.Method == http.MethodPost && len(parts) == 3 && parts[0] == "subjects" && parts[2] == "versions":
		var s Schema
		if err := json.NewDecoder(req.Body).Decode(&s); err != nil || s.Schema == "" {
			writeError(w, http.StatusUnprocessableEntity, 42201, "Invalid schema")
			return
		}
		writeJSON(w, map[string]int{"id": r.Register(parts[1], s)})
	case req.Method == http.MethodGet && len(parts) == 4 && parts[0] == "subjects" && parts[2] == "versions":
		r.mu.Lock()
		defer r.mu.Unlock()
		vs := r.subjects[parts[1]]
		if len(vs) == 0 {
			writeError(w, http.StatusNotFound, 40401, "Subject '"+parts[1]+"' not found.")
			return
		}
		n, err := strconv.Atoi(parts[3])
		if parts[3] == "latest" {
			n, err = len(vs), nil
		}
		if err != nil || n < 1 || n > len(vs) {
			writeError(w, http.StatusNotFound, 40402, "Version "+parts[3]+" not found.")
			return
		}
		v := vs[n-1]
		s := r.byID[v.id-1]
		writeJSON(w, map[string]any{
			"subject": parts[1], "version": v.ver, "id": v.id,
			"schema": s.Schema, "schemaType": s.SchemaType, "references": s.References,
		})
	case parts[0] == "config" && req.Method == http.MethodPut:
		var body map[string]any
		_ = json.NewDecoder(req.Body).Decode(&body)
		writeJSON(w, body)
	default:
		writeError(w, http.StatusNotFound, 40401, "Not found: "+req.Method+" "+req.URL.Path)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error_code": code, "message": msg})
}
