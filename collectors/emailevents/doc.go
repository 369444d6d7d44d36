// Package emailevents receives the event webhooks of email providers —
// SendGrid, Postmark, Amazon SES (through SNS) and Mailgun — checks each
// provider's signature, and turns the events into spec effects: what the
// provider says happened to a message (sent, delivered, bounced…).
//
// A Receiver verifies one request and reads its events; it keeps no
// state but the secrets, the SNS certificates it fetched and Mailgun's
// spent tokens. docs/sources/email-providers.md is the user's page.
//
// # Mapping
//
// Every recorded provider event is one effect: effect "email." + its
// normalized type, effect_key the value of the key argument (key_arg:
// SendGrid custom arg, Postmark Metadata, SES message tag or header,
// Mailgun user variable), or "PROVIDER:MESSAGE_ID" when the message has
// none. The provider's primary event, the one it sends once per message
// (sent; delivered on Postmark, which posts nothing when it sends),
// carries the key as is; any other type carries "KEY#TYPE", so that a
// delivery and a bounce of one message never count as two sends of it.
//
// # Identity
//
// Event ids come from the provider: "sendgrid:" + sg_event_id, "ses:" +
// the SNS MessageId, "mailgun:" + event-data.id, and for Postmark, whose
// records have no id, "postmark:RECORDTYPE:MESSAGEID:TIME" with the time
// as Postmark wrote it. A provider that sends an event again (it got no
// 2xx) sends the same id: one observation, never a finding.
//
// # Stream: lane, positions, acknowledgement
//
// In twice watch a source is a collectors/push Stream served by an HTTP
// handler on `listen`. Its one lane is named after the provider
// ("sendgrid"); positions are push's record sequence. Commit is the
// answer: a request is answered 200 only once the checkpoint covers its
// events, and a provider that got no 2xx posts again. The stream is not
// replayable: what a provider gave up posting while twice was down is
// lost to it (docs/sources/email-providers.md says for how long each
// provider retries).
package emailevents
