package emailevents

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/sources"
)

func registry() *sources.Registry {
	return sources.NewRegistry(Factory{SendGrid}, Factory{Postmark}, Factory{SES}, Factory{Mailgun})
}

func TestConfigTestdata(t *testing.T) {
	c, err := config.LoadWith(filepath.Join("testdata", "config.yaml"), config.Options{Sources: registry()})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sources) != 5 {
		t.Fatalf("%d sources", len(c.Sources))
	}
	got := func(i int) Config { return *c.Sources[i].Settings.(*Config) }
	sg := got(0)
	if sg.Provider != SendGrid || sg.Listen != "0.0.0.0:8025" || !strings.HasPrefix(sg.VerificationKey.Value, "MFkw") ||
		sg.KeyArg != "idempotency_key" || sg.JobArg != "job_id" || len(sg.Events) != 6 || sg.Recipients != RecipientsPlain ||
		!sg.PerRecipient || sg.MaxBodyBytes != 1<<20 || sg.MaxPending != 5000 {
		t.Errorf("sendgrid %+v", sg)
	}
	pm := got(1)
	abs, _ := filepath.Abs(filepath.Join("testdata", "postmark-password.txt"))
	if f, _ := filepath.Abs(pm.Password.File); pm.Provider != Postmark || pm.Username != "twice" || f != abs ||
		pm.KeyArg != "receipt_key" || !reflect.DeepEqual(pm.Events, []string{Delivered, Bounced}) {
		t.Errorf("postmark %+v", pm)
	}
	ses := got(2)
	if ses.Provider != SES || !reflect.DeepEqual(ses.TopicARNs, []string{"arn:aws:sns:eu-west-1:123456789012:ses-events"}) ||
		ses.JobArg != "X-Job-Id" || ses.Recipients != RecipientsOmit {
		t.Errorf("ses %+v", ses)
	}
	mg := got(3)
	if mg.Provider != Mailgun || mg.SigningKey != (config.Secret{Env: "MAILGUN_WEBHOOK_SIGNING_KEY"}) || mg.MaxAge != 30*time.Minute {
		t.Errorf("mailgun %+v", mg)
	}
	local := got(4)
	if local.Verified() || local.keyArg() != DefaultKeyArg || !reflect.DeepEqual(local.events(), []string{Sent}) || local.maxAge() != DefaultMaxAge {
		t.Errorf("defaults %+v", local)
	}
	if s := fmt.Sprintf("%v %+v", sg, sg); strings.Contains(s, sg.VerificationKey.Value) {
		t.Errorf("the key is printed: %s", s)
	}
}

func TestConfigErrors(t *testing.T) {
	load := func(yaml string) error {
		_, err := config.ParseWith("twice.yaml", []byte(yaml), config.Options{Sources: registry()})
		return err
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"no listen", "sources: [{name: s, type: sendgrid}]", `twice.yaml:1:11: sources[0]: missing listen (a sendgrid source needs it)`},
		{"open without key", "sources: [{name: s, type: sendgrid, listen: ':8025'}]",
			`twice.yaml:1:45: sources[0].listen: ":8025" is reachable beyond this machine: set verification_key to check that sendgrid sent the requests, or listen on 127.0.0.1`},
		{"mailgun open", "sources: [{name: s, type: mailgun, listen: '0.0.0.0:1'}]", "set signing_key to check that mailgun sent"},
		{"postmark open", "sources: [{name: s, type: postmark, listen: '0.0.0.0:1'}]", "set password to check that postmark sent"},
		{"ses open", "sources: [{name: s, type: ses, listen: '0.0.0.0:1'}]", "set topic_arns to check that ses sent"},
		{"bad listen", "sources: [{name: s, type: sendgrid, listen: nohost}]", `sources[0].listen: want host:port, got "nohost"`},
		{"bad key", "sources: [{name: s, type: sendgrid, listen: '127.0.0.1:1', verification_key: bm90IGEga2V5}]",
			"twice.yaml:1:78: sources[0].verification_key: not a DER public key"},
		{"two keys", "sources: [{name: s, type: sendgrid, listen: '127.0.0.1:1', verification_key: a, verification_key_env: B}]",
			"sources[0].verification_key_env: give only one of verification_key, verification_key_file and verification_key_env"},
		{"unknown event", "sources: [{name: s, type: sendgrid, listen: '127.0.0.1:1', events: [sent, opened]}]",
			`sources[0].events: unknown event type "opened" (known: sent, delivered, bounced, dropped, complained, unsubscribed)`},
		{"event twice", "sources: [{name: s, type: sendgrid, listen: '127.0.0.1:1', events: [sent, sent]}]", `"sent" is listed twice`},
		{"postmark sent", "sources: [{name: s, type: postmark, listen: '127.0.0.1:1', events: [sent]}]", "postmark posts no event when it sends"},
		{"recipients", "sources: [{name: s, type: sendgrid, listen: '127.0.0.1:1', recipients: clear}]", `sources[0].recipients: want one of hash, plain, omit`},
		{"job is key", "sources: [{name: s, type: sendgrid, listen: '127.0.0.1:1', job_arg: idempotency_key}]", `sources[0].job_arg: is the same argument as key_arg`},
		{"user without password", "sources: [{name: s, type: postmark, listen: '127.0.0.1:1', username: u}]", "sources[0].username: set password"},
		{"password without user", "sources: [{name: s, type: postmark, listen: '127.0.0.1:1', password: p}]", "sources[0].password: set username too"},
		{"bad topic", "sources: [{name: s, type: ses, listen: '127.0.0.1:1', topic_arns: [ses-events]}]", `sources[0].topic_arns: "ses-events" is not an SNS topic ARN`},
		{"topic both", "sources: [{name: s, type: ses, listen: '127.0.0.1:1', topic_arn: a, topic_arns: [b]}]", "give topic_arn or topic_arns, not both"},
		{"max age", "sources: [{name: s, type: mailgun, listen: '127.0.0.1:1', max_age: -1s}]", "sources[0].max_age"},
		{"key of another provider", "sources: [{name: s, type: mailgun, listen: '127.0.0.1:1', verification_key: x}]", `unknown key "verification_key"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := load(tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
	// A secret is never in an error.
	if err := load("sources: [{name: s, type: sendgrid, listen: '127.0.0.1:1', verification_key: c2VjcmV0LWtleS12YWx1ZQ==}]"); err == nil || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Errorf("error %v shows the key", err)
	}
	// One topic ARN alone is accepted, as is a signing key beyond loopback.
	c, err := config.ParseWith("twice.yaml", []byte("sources:\n- {name: s, type: ses, listen: ':8027', topic_arn: 'arn:aws:sns:us-east-1:123456789012:t'}\n- {name: m, type: mailgun, listen: ':8028', signing_key: k}\n"), config.Options{Sources: registry()})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Sources[0].Settings.(*Config).TopicARNs; len(got) != 1 {
		t.Errorf("topic_arn: %v", got)
	}
}

func TestNoHistory(t *testing.T) {
	c, err := config.ParseWith("twice.yaml", []byte("sources: [{name: hooks, type: sendgrid, listen: '127.0.0.1:0'}]"), config.Options{Sources: registry()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = registry().NewCollectors(t.Context(), c.Sources[0], sources.CollectOptions{})
	if err == nil || err.Error() != "source hooks (type sendgrid) keeps no history; use twice watch" {
		t.Errorf("audit of a sendgrid source: %v", err)
	}
}
