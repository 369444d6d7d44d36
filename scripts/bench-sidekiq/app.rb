# frozen_string_literal: true

# The load of scripts/bench-sidekiq: one job class whose runs take a
# realistic spread of time, a few failing their first run.
#
#   sidekiq -r ./app.rb -c 10                      # workers; TWICE_MIDDLEWARE=1 installs twice's middleware
#   ruby app.rb produce JOBS RATE SEED             # push JOBS at RATE a second; prints "i jid fails" lines
require "json"
require "sidekiq"

Sidekiq.configure_server do |config|
  config.redis = {url: ENV.fetch("REDIS_URL")}
  config.options[:average_scheduled_poll_interval] = 1
end
Sidekiq.configure_client { |config| config.redis = {url: ENV.fetch("REDIS_URL")} }
if ENV["TWICE_MIDDLEWARE"] == "1"
  require_relative "../../integrations/sidekiq/twice_middleware"
  Twice::Sidekiq.install
end

# BenchJob sleeps for its duration; with fail set, its first run raises.
class BenchJob
  include Sidekiq::Worker
  sidekiq_options retry: 3
  sidekiq_retry_in { 2 }

  def perform(_i, duration_ms, fail)
    sleep(duration_ms / 1000.0)
    raise "first run fails" if fail && Sidekiq.redis { |c| c.incr("bench:runs:#{jid}") } == 1
  end
end

# duration draws a run time: 60% 5-30 ms, 30% 50-300 ms, 9% 0.5-2 s,
# 1% 5-10 s.
def duration(rng)
  r = rng.rand
  if r < 0.60 then rng.rand(5..30)
  elsif r < 0.90 then rng.rand(50..300)
  elsif r < 0.99 then rng.rand(500..2000)
  else rng.rand(5000..10_000)
  end
end

if ARGV[0] == "produce"
  jobs, rate, seed = Integer(ARGV[1]), Float(ARGV[2]), Integer(ARGV[3])
  rng = Random.new(seed)
  start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  $stdout.sync = true
  jobs.times do |i|
    fail = rng.rand < 0.05
    jid = BenchJob.perform_async(i, duration(rng), fail)
    puts "#{i} #{jid} #{fail ? 1 : 0}"
    ahead = start + (i + 1) / rate - Process.clock_gettime(Process::CLOCK_MONOTONIC)
    sleep ahead if ahead > 0
  end
end
