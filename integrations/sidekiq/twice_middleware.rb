# frozen_string_literal: true

# twice's Sidekiq middleware: exact job lifecycle events for a twice source
# of type sidekiq with `mode: middleware`.
#
#   require_relative "twice_middleware"  # this one file, no gem
#   Twice::Sidekiq.install               # after Sidekiq's own configuration
#
# Every process that pushes jobs (web, console, cron) and every Sidekiq
# process must install it. It appends one entry per lifecycle step to a
# Redis stream (XADD ... MAXLEN ~ maxlen) on Sidekiq's own Redis:
#
#   enqueued   a push to a queue list (new jobs, scheduled jobs coming due,
#              retries, operator replays); not a push to the schedule set
#   started    a run begins; attempt counts the job's runs, across retries
#              and replays
#   succeeded  the run returned
#   failed     the run raised; retry says whether Sidekiq will run it again
#              (a Sidekiq::Shutdown counts as retried: Sidekiq pushes the
#              job back to its queue)
#   dead       retries exhausted, the job went to the dead set
#   discarded  it failed for good without going to the dead set
#              (retry: false, or dead: false)
#
# Each entry carries n, a number from INCR on "<stream>:seq" in the same
# script as the XADD, so twice sees exactly how many entries a trim took
# from it; the job payload as Sidekiq stores it (without its backtrace),
# for twice's key, entity and attrs paths; and ts, the event time in Unix
# microseconds, fine enough to order a run's own steps. Publishing never
# fails a job: an error is logged and counted in Twice::Sidekiq.errors.
#
# While a job runs, Twice::Sidekiq.attempt is its run number: write it on
# the effects the job reports to twice.
require "json"
require "sidekiq"

module Twice
  module Sidekiq
    DEFAULT_STREAM = "twice:sidekiq:events"
    DEFAULT_MAXLEN = 100_000
    # How long a job's run counter lives without a run: longer than
    # Sidekiq's 25 default retries take (about 21 days).
    DEFAULT_ATTEMPT_TTL = 30 * 24 * 3600

    # One script writes an entry: number it, count the run on started,
    # forget the count on succeeded, then XADD. One round trip per event.
    SCRIPT = <<~LUA
      local n = redis.call('INCR', KEYS[2])
      local op, attempt = ARGV[2], nil
      if op == 'start' then
        attempt = redis.call('INCR', KEYS[3])
        if attempt < tonumber(ARGV[4]) then
          attempt = tonumber(ARGV[4])
          redis.call('SET', KEYS[3], attempt)
        end
        redis.call('EXPIRE', KEYS[3], ARGV[3])
      elseif op == 'end' then
        attempt = redis.call('GET', KEYS[3])
        redis.call('DEL', KEYS[3])
      elseif op == 'keep' then
        attempt = redis.call('GET', KEYS[3])
        if attempt then redis.call('EXPIRE', KEYS[3], ARGV[3]) end
      end
      local args = {KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'n', n}
      if attempt then
        args[#args + 1] = 'attempt'
        args[#args + 1] = tostring(attempt)
      end
      for i = 5, #ARGV do args[#args + 1] = ARGV[i] end
      redis.call('XADD', unpack(args))
      return attempt
    LUA

    class << self
      attr_reader :stream, :maxlen, :attempt_ttl, :errors

      # install adds the client and server middleware and the death
      # handler to Sidekiq's configuration.
      def install(stream: DEFAULT_STREAM, maxlen: DEFAULT_MAXLEN, attempt_ttl: DEFAULT_ATTEMPT_TTL)
        @stream, @maxlen, @attempt_ttl = stream, maxlen, attempt_ttl
        @errors = 0
        @sha = nil
        ::Sidekiq.configure_client do |config|
          config.client_middleware { |chain| chain.add ClientMiddleware }
        end
        ::Sidekiq.configure_server do |config|
          config.client_middleware { |chain| chain.add ClientMiddleware }
          config.server_middleware { |chain| chain.prepend ServerMiddleware }
          handler = method(:died)
          config.death_handlers << handler unless config.death_handlers.include?(handler)
        end
      end

      # publish appends one event; op is :start, :end, :keep or nil (see
      # SCRIPT), ttl the life of the run counter it leaves. It returns the
      # job's run count when op is not nil.
      def publish(event, job, op: nil, ttl: @attempt_ttl, fields: {}, pool: nil)
        job = job.reject { |k, _| k == "error_backtrace" }
        argv = [@maxlen.to_s, op.to_s, ttl.to_s, first_attempt(job).to_s,
          "v", "1", "e", event, "ts", (Time.now.to_r * 1_000_000).to_i.to_s,
          "jid", job["jid"].to_s, "job", JSON.generate(job)]
        fields.each { |k, v| argv << k.to_s << v.to_s }
        keys = [@stream, "#{@stream}:seq", "#{@stream}:attempt:#{job["jid"]}"]
        run = ->(conn) { eval_script(conn, keys, argv) }
        pool ? pool.with(&run) : ::Sidekiq.redis(&run)
      rescue => e
        @errors += 1
        ::Sidekiq.logger.warn("twice: could not publish #{event} of #{job["jid"]}: #{e.class}: #{e.message}")
        nil
      end

      # The death handler: Sidekiq calls it when a job fails for good. A
      # dead job keeps its run counter as long as Sidekiq keeps it in the
      # dead set, so that a replay counts on from its last run.
      def died(job, exception)
        fields = {error: error_text(exception)}
        if !job["retry"] || job["dead"] == false
          publish("discarded", job, op: :end, fields: fields)
        else
          publish("dead", job, op: :keep, ttl: [option(:dead_timeout_in_seconds, 180 * 24 * 3600), @attempt_ttl].max, fields: fields)
        end
      end

      # retried? says whether Sidekiq will run the job again after e, as
      # Sidekiq::JobRetry decides it.
      def retried?(worker, job, e)
        return true if shutdown?(e)
        retry_opt = job["retry"]
        retry_opt = worker.class.get_sidekiq_options["retry"] if retry_opt.nil? && worker
        return false unless retry_opt
        max = retry_opt.is_a?(Integer) ? retry_opt : option(:max_retries, 25)
        count = job["retry_count"] ? job["retry_count"] + 1 : 0
        count < max
      end

      # attempt is the run number of the job running in this thread, nil
      # outside a job.
      def attempt
        Thread.current[:twice_sidekiq_attempt]
      end

      def error_text(e)
        "#{e.class}: #{e.message}"[0, 1000]
      end

      private

      # option reads a Sidekiq option in Sidekiq 6 and 7 alike.
      def option(name, default)
        opts = ::Sidekiq.respond_to?(:default_configuration) ? ::Sidekiq.default_configuration : ::Sidekiq.options
        opts[name] || default
      end

      # eval_script runs SCRIPT: with evalsha on a redis-rb connection
      # (Sidekiq 6), which redis-namespace prefixes the keys of; with call
      # on a redis-client one (Sidekiq 7).
      def eval_script(conn, keys, argv)
        reloaded = false
        begin
          if conn.respond_to?(:evalsha)
            @sha ||= conn.script(:load, SCRIPT)
            conn.evalsha(@sha, keys: keys, argv: argv)
          else
            @sha ||= conn.call("SCRIPT", "LOAD", SCRIPT)
            conn.call("EVALSHA", @sha, keys.size, *keys, *argv)
          end
        rescue => e
          # Redis restarted or its scripts were flushed: load it once more.
          raise if reloaded || !e.message.start_with?("NOSCRIPT")
          @sha, reloaded = nil, true
          retry
        end
      end

      def shutdown?(e)
        seen = []
        while e
          return true if e.is_a?(::Sidekiq::Shutdown)
          return false if seen.include?(e.object_id)
          seen << e.object_id
          e = e.cause
        end
        false
      end

      # first_attempt is the least run number the next run can have, from
      # Sidekiq's own retry_count: the floor of the counter, should its
      # key have expired.
      def first_attempt(job)
        job["retry_count"] ? job["retry_count"] + 2 : 1
      end
    end

    # ClientMiddleware publishes enqueued for each push to a queue list.
    class ClientMiddleware
      def call(_worker_class, job, _queue, redis_pool = nil)
        result = yield
        # A job with "at" goes to the schedule set, not to a queue.
        Twice::Sidekiq.publish("enqueued", job, pool: redis_pool) if result && !job.key?("at")
        result
      end
    end

    # ServerMiddleware publishes started, then succeeded or failed.
    class ServerMiddleware
      def call(worker, job, _queue)
        Thread.current[:twice_sidekiq_attempt] = Twice::Sidekiq.publish("started", job, op: :start)
        begin
          yield
        rescue Exception => e # rubocop:disable Lint/RescueException -- Sidekiq::Shutdown too
          retried = Twice::Sidekiq.retried?(worker, job, e)
          Twice::Sidekiq.publish("failed", job, op: :keep,
            fields: {retry: retried ? "1" : "0", error: Twice::Sidekiq.error_text(e)})
          raise
        end
        Twice::Sidekiq.publish("succeeded", job, op: :end)
      ensure
        Thread.current[:twice_sidekiq_attempt] = nil
      end
    end
  end
end
