# Lists the gems that Gemfile.lock pins for the groups a Lambda needs, as Bundler finds them
# on this machine (installed gems, Debian's packaged gems, `path:` gems), one JSON object a
# line. Run with BUNDLE_GEMFILE and BUNDLE_FROZEN set: it resolves nothing and writes nothing.
require "bundler"
require "json"

begin
  specs = Bundler.definition.requested_specs
rescue Bundler::BundlerError => e
  warn e.message
  exit 3
end

specs.each do |s|
  next if s.name == "bundler"
  spec = s.respond_to?(:to_spec) ? s.to_spec : s
  puts JSON.generate(
    "full_name" => spec.full_name,
    "dir" => spec.full_gem_path,
    "loaded_from" => spec.loaded_from.to_s,
    "default_gem" => spec.default_gem?,
    "extensions" => !spec.extensions.empty?,
    "gemspec" => spec.to_ruby,
  )
end
