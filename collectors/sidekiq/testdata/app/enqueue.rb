# frozen_string_literal: true

# Pushes jobs of worker.rb, as an operator or a web process would:
#
#   ruby enqueue.rb mix              # the job mix; prints {"name": jid, ...}
#   ruby enqueue.rb one KEY          # one more SendReceipt; prints its jid
#   ruby enqueue.rb replay JID       # retry a dead job, as from the Web UI
require_relative "worker"

case ARGV[0]
when "mix"
  jids = {}
  3.times { |i| jids["ok-#{i}"] = SendReceipt.perform_async("p-ok-#{i}") }
  jids["dup-a"] = SendReceipt.perform_async("p-dup")
  jids["dup-b"] = SendReceipt.perform_async("p-dup")
  jids["missing"] = SendReceipt.perform_async("p-missing", {"skip_effect" => true})
  jids["crash"] = ChargeCard.perform_async("pay-crash", 1)
  jids["replay"] = ChargeCard.perform_async("pay-replay", 2)
  jids["dead"] = SyncInventory.perform_async("inv-1")
  jids["killed"] = ExportReport.perform_async("rep-1")
  puts JSON.generate(jids)
when "one"
  puts JSON.generate({"one" => SendReceipt.perform_async(ARGV.fetch(1))})
when "replay"
  entry = Sidekiq::DeadSet.new.find_job(ARGV.fetch(1)) or abort "#{ARGV[1]} is not in the dead set"
  entry.retry
  puts "{}"
else
  abort "usage: enqueue.rb mix | one KEY | replay JID"
end
