# frozen_string_literal: true

# A Sidekiq app with known faults, for the sidekiq tap's integration test
# (integration_test.go): real Sidekiq 6 workers run it with
#
#   sidekiq -r ./worker.rb -q default -q billing      # and -q slow
#
# and twice watches it in both modes at once: the middleware is installed
# (mode middleware reads its stream), and poll mode reads Sidekiq's own
# structures. Handlers write their effects as twice events, one JSON line
# each, to $TWICE_EFFECTS; effects carry the job id, not the attempt, so
# that poll mode is judged on what it alone can see.
require "json"
require "time"
require "sidekiq"
require "sidekiq/api"
require_relative "../../../../integrations/sidekiq/twice_middleware"

Sidekiq.configure_server do |config|
  config.redis = {url: ENV.fetch("REDIS_URL")}
  # Retries and scheduled jobs come due within about a second.
  config.options[:average_scheduled_poll_interval] = 1
end
Sidekiq.configure_client { |config| config.redis = {url: ENV.fetch("REDIS_URL")} }
Twice::Sidekiq.install

module Effects
  # write appends one effect event.
  def self.write(effect, key, jid)
    line = JSON.generate({ts: Time.now.utc.iso8601(6), kind: "effect", effect: effect, effect_key: key, job_id: jid})
    File.open(ENV.fetch("TWICE_EFFECTS"), "a") do |f|
      f.flock(File::LOCK_EX)
      f.write(line + "\n")
    end
  end

  # run counts the runs of a job, so a handler can fail its first ones.
  def self.run(jid)
    Sidekiq.redis { |c| c.incr("test:runs:#{jid}") }
  end
end

# SendReceipt sends its receipt: args [key] or [key, {"skip_effect" => true}]
# for the handler that "succeeds" without its effect.
class SendReceipt
  include Sidekiq::Worker
  sidekiq_options queue: "default", retry: 3

  def perform(key, opts = {})
    Effects.write("email.sent", "receipt/#{key}", jid) unless opts["skip_effect"]
  end
end

# ChargeCard writes its ledger row, then raises on its first fail_runs
# runs: the retry repeats the effect.
class ChargeCard
  include Sidekiq::Worker
  sidekiq_options queue: "default", retry: 1
  sidekiq_retry_in { 3 }

  def perform(key, fail_runs)
    Effects.write("ledger.insert", "charge/#{key}", jid)
    raise "card network timeout" if Effects.run(jid) <= fail_runs
  end
end

# SyncInventory always fails: dead after its one retry.
class SyncInventory
  include Sidekiq::Worker
  sidekiq_options queue: "billing", retry: 1
  sidekiq_retry_in { 3 }

  def perform(_key)
    raise "inventory service down"
  end
end

# ExportReport runs until its worker is killed.
class ExportReport
  include Sidekiq::Worker
  sidekiq_options queue: "slow", retry: 3

  def perform(_key)
    Effects.run(jid)
    sleep 600
  end
end
