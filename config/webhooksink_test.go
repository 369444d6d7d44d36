package config

import (
	"strings"
	"testing"
	"time"
)

// TestWebhookSink: a webhook findings sink takes url or url_env, a
// format and a timeout; wrong ones are refused with their path.
func TestWebhookSink(t *testing.T) {
	c, err := Parse("twice.yaml", []byte(`
watch:
  findings:
    - {type: webhook, url: "https://example.com/hook?token=x", timeout: 3s}
    - {type: webhook, url_env: SLACK_WEBHOOK_URL, format: slack}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Sink{
		{Type: SinkWebhook, URL: "https://example.com/hook?token=x", Timeout: 3 * time.Second, Line: 4},
		{Type: SinkWebhook, URLEnv: "SLACK_WEBHOOK_URL", Format: "slack", Line: 5},
	}
	if len(c.Watch.Findings) != 2 {
		t.Fatalf("findings %+v", c.Watch.Findings)
	}
	for i, s := range c.Watch.Findings {
		if s.Type != want[i].Type || s.URL != want[i].URL || s.URLEnv != want[i].URLEnv || s.Format != want[i].Format || s.Timeout != want[i].Timeout {
			t.Errorf("sink %d: %+v, want %+v", i, s, want[i])
		}
	}
	for _, tc := range []struct{ name, src, want string }{
		{"neither url nor url_env", "{type: webhook}", "findings[0]: give one of url and url_env"},
		{"both", "{type: webhook, url: x, url_env: Y}", "findings[0]: give one of url and url_env"},
		{"format", "{type: webhook, url: x, format: teams}", `findings[0].format: unknown format "teams" (json, slack)`},
		{"timeout", "{type: webhook, url: x, timeout: soon}", "findings[0].timeout: want a Go duration"},
		{"kafka key", "{type: webhook, url: x, topic: t}", "topic"},
	} {
		_, err := Parse("twice.yaml", []byte("watch:\n  findings:\n    - "+tc.src+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to say %q", tc.name, err, tc.want)
		}
	}
}

// TestWebhookSinkValidate: a webhook sink built in code is checked too.
func TestWebhookSinkValidate(t *testing.T) {
	c := Default()
	c.Watch.Findings = []Sink{{Type: SinkWebhook, Format: "teams", Timeout: -time.Second}}
	err := c.Validate()
	for _, want := range []string{"give one of url and url_env", `unknown format "teams"`, "timeout: negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want it to say %q", err, want)
		}
	}
	c.Watch.Findings = []Sink{{Type: SinkWebhook, URLEnv: "HOOK", Format: "slack"}}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
