{{/* OPA's config file: decision logs, and the bundle service when policies come from a bundle. */}}
{{- define "llm-policy-proxy.opaConfig" -}}
{{- $v := .Values -}}
{{- $doc := dict "decision_logs" (dict "console" $v.opa.decisionLogsConsole) -}}
{{- if eq $v.policies.source "bundle" -}}
{{- $_ := set $doc "services" (dict "policy-bundles" (dict "url" $v.opa.bundle.url)) -}}
{{- $polling := dict "min_delay_seconds" (int $v.opa.bundle.pollingMinSeconds) "max_delay_seconds" (int $v.opa.bundle.pollingMaxSeconds) -}}
{{- $_ := set $doc "bundles" (dict "llm-policy-proxy" (dict "service" "policy-bundles" "resource" $v.opa.bundle.resource "polling" $polling)) -}}
{{- end -}}
{{- toYaml $doc -}}
{{- end -}}
