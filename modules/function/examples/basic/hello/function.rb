# A Ruby handler: Lambda's ruby3.3 runtime calls handler(event:, context:).
require "json"

def handler(event:, context:)
  { statusCode: 200, body: JSON.generate(message: ENV.fetch("GREETING", "hello")) }
end
