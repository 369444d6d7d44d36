package promtext

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSums(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "# HELP twice_x x\ntwice_x{a=\"1\"} 2\ntwice_x{a=\"2\"} 3.5\ntwice_y 1e3\ngo_other 9\n")
	}))
	defer srv.Close()
	got := Sums(strings.TrimPrefix(srv.URL, "http://"))
	if got["twice_x"] != 5.5 || got["twice_y"] != 1000 || len(got) != 2 {
		t.Fatalf("sums %v", got)
	}
	if Sums("127.0.0.1:1") != nil {
		t.Fatal("no server: want nil")
	}
}
