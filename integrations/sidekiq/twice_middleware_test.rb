# frozen_string_literal: true

# Tests of twice_middleware.rb against a real Redis: REDIS_URL names an
# empty database the test may flush. Run from Go (collectors/sidekiq,
# TestRubyMiddleware) or by hand:
#
#   REDIS_URL=redis://127.0.0.1:16379/5 ruby integrations/sidekiq/twice_middleware_test.rb
require "minitest/autorun"
require "json"
require "sidekiq"
require "sidekiq/api"
require_relative "twice_middleware"

Sidekiq.logger.level = Logger::FATAL
Sidekiq.configure_client { |c| c.redis = {url: ENV.fetch("REDIS_URL")} }

class Charge
  include Sidekiq::Worker
  sidekiq_options retry: 2
  def perform(_payment); end
end

class Ping
  include Sidekiq::Worker
  sidekiq_options retry: false
  def perform; end
end

class TwiceMiddlewareTest < Minitest::Test
  STREAM = "test:twice:events"

  def setup
    Sidekiq.redis(&:flushdb)
    Twice::Sidekiq.install(stream: STREAM, maxlen: 1000, attempt_ttl: 3600)
  end

  # entries returns the stream as hashes, with job parsed.
  def entries
    Sidekiq.redis { |c| c.xrange(STREAM, "-", "+") }.map do |id, fields|
      fields.merge("id" => id, "job" => JSON.parse(fields["job"]))
    end
  end

  def run_job(worker, job, &block)
    block ||= proc {}
    Twice::Sidekiq::ServerMiddleware.new.call(worker.new, job, job["queue"], &block)
  end

  def test_enqueued_on_push_not_on_schedule
    jid = Charge.perform_async({"payment" => "p-1"})
    Charge.perform_in(3600, {"payment" => "p-2"})
    got = entries
    assert_equal 1, got.size, "a scheduled push is not an enqueue: #{got}"
    e = got.first
    assert_equal %w[1 enqueued 1], [e["v"], e["e"], e["n"]]
    assert_equal jid, e["jid"]
    assert_equal({"payment" => "p-1"}, e["job"]["args"][0])
    assert_equal "Charge", e["job"]["class"]
    assert_nil e["attempt"]
    assert_in_delta Time.now.to_f * 1_000_000, e["ts"].to_i, 60_000_000, "ts in Unix microseconds"
  end

  def test_runs_count_across_retries_and_forget_on_success
    job = {"jid" => "j1", "class" => "Charge", "queue" => "default", "args" => [1], "retry" => 2}
    assert_raises(RuntimeError) { run_job(Charge, job) { raise "boom" } }
    run_job(Charge, job.merge("retry_count" => 0))
    got = entries.map { |e| [e["e"], e["attempt"], e["retry"]] }
    assert_equal [["started", "1", nil], ["failed", "1", "1"], ["started", "2", nil], ["succeeded", "2", nil]], got
    assert_equal %w[1 2 3 4], entries.map { |e| e["n"] }
    failed = entries[1]
    assert_equal "RuntimeError: boom", failed["error"]
    assert_equal 0, Sidekiq.redis { |c| c.exists("#{STREAM}:attempt:j1") }, "the counter outlives the success"
  end

  def test_retry_flag_follows_sidekiqs_decision
    base = {"class" => "Charge", "queue" => "default", "args" => [1]}
    cases = {
      "retries left" => [base.merge("jid" => "r1", "retry" => 2), "1"],
      "last retry" => [base.merge("jid" => "r2", "retry" => 2, "retry_count" => 1), "0"],
      "retry false" => [base.merge("jid" => "r3", "retry" => false), "0"],
      "retry 0" => [base.merge("jid" => "r4", "retry" => 0), "0"],
      "retry true, default 25" => [base.merge("jid" => "r5", "retry" => true, "retry_count" => 23), "1"],
      "retry true, 25th failure" => [base.merge("jid" => "r6", "retry" => true, "retry_count" => 24), "0"]
    }
    cases.each do |name, (job, want)|
      assert_raises(RuntimeError) { run_job(Charge, job) { raise "x" } }
      failed = entries.find { |e| e["jid"] == job["jid"] && e["e"] == "failed" }
      assert_equal want, failed["retry"], name
    end
  end

  def test_shutdown_counts_as_retried
    job = {"jid" => "s1", "class" => "Charge", "queue" => "default", "args" => [1], "retry" => false}
    assert_raises(Sidekiq::Shutdown) { run_job(Charge, job) { raise Sidekiq::Shutdown } }
    assert_equal "1", entries.find { |e| e["e"] == "failed" }["retry"], "Sidekiq pushes an interrupted job back"
  end

  def test_attempt_seen_by_the_job
    seen = nil
    run_job(Charge, {"jid" => "t1", "class" => "Charge", "queue" => "default", "args" => [1], "retry_count" => 0}) { seen = Twice::Sidekiq.attempt }
    assert_equal 2, seen
    assert_nil Twice::Sidekiq.attempt, "the attempt outlives its job"
  end

  def test_attempt_floor_from_retry_count
    # The counter's key expired (or the middleware was installed late):
    # the run number cannot go below Sidekiq's own count.
    run_job(Charge, {"jid" => "f1", "class" => "Charge", "queue" => "default", "args" => [1], "retry_count" => 4})
    assert_equal "6", entries.first["attempt"]
  end

  def test_death_and_replay_count_on
    job = {"jid" => "d1", "class" => "Charge", "queue" => "default", "args" => [1], "retry" => 1}
    assert_raises(RuntimeError) { run_job(Charge, job) { raise "a" } }
    dead = job.merge("retry_count" => 0)
    assert_raises(RuntimeError) { run_job(Charge, dead) { raise "b" } }
    Twice::Sidekiq.died(dead.merge("retry_count" => 1), RuntimeError.new("b"))
    ttl = Sidekiq.redis { |c| c.ttl("#{STREAM}:attempt:d1") }
    assert ttl > 3600, "a dead job keeps its counter as long as the dead set keeps it (ttl #{ttl})"
    # An operator replays it: Sidekiq decrements retry_count and pushes.
    run_job(Charge, dead)
    got = entries.map { |e| [e["e"], e["attempt"]] }
    assert_equal [["started", "1"], ["failed", "1"], ["started", "2"], ["failed", "2"], ["dead", "2"], ["started", "3"], ["succeeded", "3"]], got
  end

  def test_discarded_when_not_kept
    Twice::Sidekiq.died({"jid" => "x1", "class" => "Ping", "queue" => "default", "args" => [], "retry" => false}, RuntimeError.new("no"))
    Twice::Sidekiq.died({"jid" => "x2", "class" => "Charge", "queue" => "default", "args" => [], "retry" => 3, "dead" => false}, RuntimeError.new("no"))
    assert_equal %w[discarded discarded], entries.map { |e| e["e"] }
  end

  def test_backtrace_left_out
    run_job(Charge, {"jid" => "b1", "class" => "Charge", "queue" => "default", "args" => [], "error_backtrace" => "eJz..."})
    refute entries.first["job"].key?("error_backtrace")
  end

  def test_maxlen_trims_and_numbers_stay_whole
    Twice::Sidekiq.install(stream: STREAM, maxlen: 10, attempt_ttl: 3600)
    300.times { |i| Twice::Sidekiq.publish("enqueued", {"jid" => "m#{i}", "class" => "Charge", "queue" => "default", "args" => []}) }
    got = entries
    assert got.size < 300, "MAXLEN ~ 10 kept all #{got.size} entries"
    ns = got.map { |e| e["n"].to_i }
    assert_equal (ns.first..300).to_a, ns, "numbers have a hole inside the kept entries"
  end

  def test_redis_down_never_fails_the_job
    pool = ConnectionPool.new(size: 1) { Redis.new(url: "redis://127.0.0.1:1/0", connect_timeout: 0.2) }
    before = Twice::Sidekiq.errors
    assert_nil Twice::Sidekiq.publish("enqueued", {"jid" => "z", "class" => "Charge"}, pool: pool)
    assert_equal before + 1, Twice::Sidekiq.errors
  end

  def test_scripts_flushed
    Twice::Sidekiq.publish("enqueued", {"jid" => "q1", "class" => "Charge", "queue" => "default", "args" => []})
    Sidekiq.redis { |c| c.script(:flush) }
    Twice::Sidekiq.publish("enqueued", {"jid" => "q2", "class" => "Charge", "queue" => "default", "args" => []})
    assert_equal %w[q1 q2], entries.map { |e| e["jid"] }, "after SCRIPT FLUSH the script is loaded again"
  end

  def test_installs_into_sidekiq
    assert Sidekiq.client_middleware.exists?(Twice::Sidekiq::ClientMiddleware)
  end
end
