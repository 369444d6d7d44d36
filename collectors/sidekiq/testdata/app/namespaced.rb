# frozen_string_literal: true

# Pushes one job through a Sidekiq whose keys redis-namespace prefixes with
# "myapp", with twice's middleware installed, and runs it through the
# server middleware; prints its jid. For TestNamespace.
require "sidekiq"
require "redis/namespace"
require_relative "../../../../integrations/sidekiq/twice_middleware"

Sidekiq.configure_client { |config| config.redis = {url: ENV.fetch("REDIS_URL"), namespace: "myapp"} }
Twice::Sidekiq.install

class Hello
  include Sidekiq::Worker
  def perform(_key); end
end

jid = Hello.perform_async("k-1")
job = {"jid" => jid, "class" => "Hello", "queue" => "default", "args" => ["k-1"], "enqueued_at" => Time.now.to_f}
Twice::Sidekiq::ServerMiddleware.new.call(Hello.new, job, "default") {}
abort "publish errors: #{Twice::Sidekiq.errors}" if Twice::Sidekiq.errors > 0
puts jid
