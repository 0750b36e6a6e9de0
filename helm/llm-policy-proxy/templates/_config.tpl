{{/*
The proxy's config file (docs/configuration.md) built from .Values.config. The chart owns the parts
that depend on the pod: listen address and port, file paths, the sidecar identity (${APP_NAME} and
${TEAM} from the Downward API), and secrets (${LLMPP_UPSTREAM_<NAME>_API_KEY}, ${REDIS_URL}).
*/}}
{{- define "llm-policy-proxy.configDocument" -}}
{{- $v := .Values -}}
{{- $c := $v.config -}}
{{- $sidecar := eq $v.mode "sidecar" -}}
{{- $server := dict
      "host" (ternary $v.sidecar.listenAddress "0.0.0.0" $sidecar)
      "port" (int $v.containerPort)
      "max_body_bytes" (int64 $c.server.maxBodyBytes)
      "drain_timeout_s" $c.server.drainTimeoutSeconds
      "keepalive_timeout_s" $c.server.keepaliveTimeoutSeconds -}}
{{- $auth := dict "user_from_body" $c.auth.userFromBody -}}
{{- if $sidecar -}}
{{- $identity := dict "app" "${APP_NAME}" "team" "${TEAM}" -}}
{{- with $v.sidecar.identity.userHeader }}{{ $_ := set $identity "user_header" . }}{{ end -}}
{{- $_ := set $auth "mode" "sidecar" -}}
{{- $_ := set $auth "sidecar" $identity -}}
{{- else -}}
{{- $_ := set $auth "mode" "gateway" -}}
{{- $_ := set $auth "keys" $c.auth.keys -}}
{{- if $c.auth.keysFile.existingSecret -}}
{{- $_ := set $auth "keys_file" (printf "%s/%s" (include "llm-policy-proxy.keysPath" .) $c.auth.keysFile.key) -}}
{{- end -}}
{{- with $c.auth.jwt }}{{ $_ := set $auth "jwt" . }}{{ end -}}
{{- end -}}
{{- $upstreams := dict -}}
{{- range $name, $u := $c.upstreams -}}
{{- $entry := dict "kind" $u.kind "base_url" $u.baseUrl -}}
{{- with $u.apiVersion }}{{ $_ := set $entry "api_version" . }}{{ end -}}
{{- if and $u.apiKey $u.apiKey.existingSecret -}}
{{- $_ := set $entry "api_key" (printf "${%s}" (include "llm-policy-proxy.upstreamKeyEnv" $name)) -}}
{{- end -}}
{{- with $u.timeouts }}{{ $_ := set $entry "timeouts" . }}{{ end -}}
{{- with $u.maxConnections }}{{ $_ := set $entry "max_connections" (int .) }}{{ end -}}
{{- $_ := set $upstreams $name $entry -}}
{{- end -}}
{{- $opa := $v.opa.sidecar.enabled -}}
{{- $policy := dict
      "engine" (ternary "opa" $c.policy.engine $opa)
      "opa_timeout_ms" (int $c.policy.opaTimeoutMs)
      "fail_open" $c.policy.failOpen
      "reload_interval_s" $c.policy.reloadIntervalSeconds
      "dir" (ternary (include "llm-policy-proxy.policyPath" .) "/opt/llm-policy-proxy/policies" (eq $v.policies.source "chart")) -}}
{{- if or $opa (eq $c.policy.engine "opa") -}}
{{- $_ := set $policy "opa_url" (ternary "http://127.0.0.1:8181" $c.policy.opaUrl $opa) -}}
{{- end -}}
{{- $state := include "llm-policy-proxy.statePath" . -}}
{{- $budget := dict
      "store" $c.budget.store
      "key_prefix" $c.budget.keyPrefix
      "fail_open" $c.budget.failOpen
      "ledger_path" (printf "%s/ledger.jsonl" $state) -}}
{{- if eq $c.budget.store "redis" -}}
{{- $_ := set $budget "redis_url" "${REDIS_URL}" -}}
{{- else -}}
{{- $_ := set $budget "sqlite_path" (printf "%s/budget.sqlite3" $state) -}}
{{- end -}}
{{- $doc := dict
      "server" $server
      "auth" $auth
      "upstreams" $upstreams
      "models" $c.models
      "policy" $policy
      "budget" $budget
      "telemetry" (dict "log_level" $c.telemetry.logLevel "metrics_user_label" $c.telemetry.metricsUserLabel)
      "tokens" (dict "vocab_dir" (include "llm-policy-proxy.vocabPath" .)) -}}
{{- if $v.egress.enabled -}}
{{- $_ := set $doc "egress" (merge (dict "port" (int $v.egress.port)) $v.egress.config) -}}
{{- end -}}
{{- $doc = merge $doc (deepCopy $c.extra) -}}
{{- toYaml $doc -}}
{{- end -}}
