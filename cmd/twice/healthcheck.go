package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/sources/builtin"
)

// healthcheckTimeout bounds one `twice healthcheck`.
const healthcheckTimeout = 3 * time.Second

func newHealthcheckCmd(e env) *cobra.Command {
	var url, cfgPath string
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Check that a running twice watch answers on /healthz",
		Long: `healthcheck asks a running twice watch whether it is alive: it GETs
/healthz on the watch's HTTP API and exits 0 on 200, 1 otherwise (with one
line on stderr saying why), within 3s. It is meant for container health
checks where no curl is at hand (the twice image is distroless).

The URL is --url, else http://HOST:PORT/healthz for the watch.listen of the
twice.yaml of --config (default ./twice.yaml when it exists, else the
default listen address 127.0.0.1:8080); an empty or wildcard host is
checked on 127.0.0.1.`,
		Example: `  twice healthcheck
  twice healthcheck --config /etc/twice/twice.yaml
  twice healthcheck --url http://127.0.0.1:8080/healthz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Exit 1 is not printed by run (it is the findings code):
			// the reason is printed here.
			unhealthy := func(err error) error {
				fmt.Fprintf(e.stderr, "twice: %v\n", err)
				return &exitError{code: exitFindings, err: err}
			}
			target := url
			if target == "" {
				var err error
				if target, err = healthURL(cfgPath, cmd.Flags().Changed("config")); err != nil {
					return unhealthy(err)
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), healthcheckTimeout)
			defer cancel()
			if err := checkHealth(ctx, target); err != nil {
				return unhealthy(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", target)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&url, "url", "", "the URL to check (default: /healthz on watch.listen of --config)")
	fl.StringVarP(&cfgPath, "config", "c", defaultConfig, "twice.yaml whose watch.listen to check")
	return cmd
}

// healthURL returns the /healthz URL of the watch.listen of the config at
// path. A default path that does not exist stands for every default.
func healthURL(path string, explicit bool) (string, error) {
	listen := config.DefaultListen
	if _, err := os.Stat(path); err == nil || explicit {
		cfg, err := config.LoadWith(path, config.Options{Sources: builtin.Registry()})
		if err != nil {
			return "", fmt.Errorf("healthcheck: %w", err)
		}
		listen = cfg.Watch.Listen
	}
	if listen == "" {
		return "", fmt.Errorf("healthcheck: %s has no HTTP API (watch.listen is empty): nothing to check", path)
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("healthcheck: watch.listen %q of %s: %w", listen, path, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}

// checkHealth GETs url and returns nil on 200, else an error of one line
// that names url and says why.
func checkHealth(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("healthcheck %s: no answer within %s", url, healthcheckTimeout)
		}
		return fmt.Errorf("healthcheck %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		msg := strings.Join(strings.Fields(string(body)), " ")
		if msg != "" {
			msg = ": " + msg
		}
		return fmt.Errorf("healthcheck %s: %s%s", url, resp.Status, msg)
	}
	return nil
}
