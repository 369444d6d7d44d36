// Package builtin registers every tap of twice: one line per source type.
// A new tap adds its factory here (docs/architecture.md).
package builtin

import (
	"github.com/twicehq/twice/collectors/bullmq"
	"github.com/twicehq/twice/collectors/celery"
	"github.com/twicehq/twice/collectors/emailevents"
	"github.com/twicehq/twice/collectors/file"
	"github.com/twicehq/twice/collectors/ingest"
	"github.com/twicehq/twice/collectors/kafka"
	"github.com/twicehq/twice/collectors/oban"
	"github.com/twicehq/twice/collectors/otlp"
	"github.com/twicehq/twice/collectors/postgres"
	"github.com/twicehq/twice/collectors/river"
	"github.com/twicehq/twice/collectors/sidekiq"
	"github.com/twicehq/twice/collectors/smtp"
	"github.com/twicehq/twice/collectors/webhook"
	"github.com/twicehq/twice/sources"
)

// Registry returns a new registry of every source type twice has.
func Registry() *sources.Registry {
	return sources.NewRegistry(
		file.Factory{},
		kafka.Factory{},
		sidekiq.Factory{},
		bullmq.Factory{},
		celery.Factory{},
		postgres.Factory{},
		river.Factory,
		oban.Factory,
		ingest.Factory{},
		smtp.Factory{},
		webhook.Factory{},
		otlp.Factory{},
		emailevents.Factory{Provider: emailevents.SendGrid},
		emailevents.Factory{Provider: emailevents.Postmark},
		emailevents.Factory{Provider: emailevents.SES},
		emailevents.Factory{Provider: emailevents.Mailgun},
	)
}
