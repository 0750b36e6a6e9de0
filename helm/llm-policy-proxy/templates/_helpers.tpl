{{/*
Names and labels. Every helper takes a context with .Values and .Release only (no .Chart), so the
sidecar templates can be called from an application chart with (dict "Values" ... "Release" .Release).
*/}}
{{- define "llm-policy-proxy.name" -}}
{{- default "llm-policy-proxy" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llm-policy-proxy.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "llm-policy-proxy.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "llm-policy-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llm-policy-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "llm-policy-proxy.labels" -}}
{{ include "llm-policy-proxy.selectorLabels" . }}
app.kubernetes.io/component: {{ ternary "sidecar" "gateway" (eq .Values.mode "sidecar") }}
app.kubernetes.io/part-of: llm-policy-proxy
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Chart }}
app.kubernetes.io/version: {{ .AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Name .Version | replace "+" "_" }}
{{- end }}
{{- end -}}

{{- define "llm-policy-proxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "llm-policy-proxy.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "llm-policy-proxy.image" -}}
{{- $tag := default "0.1.0" .Values.image.tag -}}
{{- with .Chart }}{{ $tag = default .AppVersion $.Values.image.tag }}{{ end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The env var holding an upstream's provider key: LLMPP_UPSTREAM_<NAME>_API_KEY. */}}
{{- define "llm-policy-proxy.upstreamKeyEnv" -}}
{{- printf "LLMPP_UPSTREAM_%s_API_KEY" (regexReplaceAll "[^A-Za-z0-9]" . "_" | upper) -}}
{{- end -}}

{{- define "llm-policy-proxy.configPath" -}}/etc/llm-policy-proxy/config/config.yaml{{- end -}}
{{- define "llm-policy-proxy.policyPath" -}}/etc/llm-policy-proxy/policies{{- end -}}
{{- define "llm-policy-proxy.statePath" -}}/var/lib/llm-policy-proxy{{- end -}}
{{- define "llm-policy-proxy.vocabPath" -}}/opt/llm-policy-proxy/vocab{{- end -}}
{{- define "llm-policy-proxy.keysPath" -}}/etc/llm-policy-proxy/keys{{- end -}}

{{/* Whether the policies ConfigMaps are rendered and mounted. */}}
{{- define "llm-policy-proxy.policiesFromChart" -}}
{{- if eq .Values.policies.source "chart" }}true{{ end -}}
{{- end -}}

{{/* Consistency checks that the schema cannot express; fail at install time, naming the values. */}}
{{- define "llm-policy-proxy.validate" -}}
{{- $v := .Values -}}
{{- if and (eq $v.policies.source "bundle") (not $v.opa.sidecar.enabled) -}}
{{- fail "policies.source=bundle needs opa.sidecar.enabled=true (only OPA reads bundles)" -}}
{{- end -}}
{{- if and (eq $v.policies.source "bundle") (not $v.opa.bundle.url) -}}
{{- fail "policies.source=bundle needs opa.bundle.url" -}}
{{- end -}}
{{- if and (eq $v.mode "gateway") (not $v.config.auth.keys) (not $v.config.auth.keysFile.existingSecret) (not $v.config.auth.jwt) -}}
{{- fail "config.auth.keys is empty: gateway mode needs at least one issued key (sha256 from `llm-policy-proxy hash-key`), config.auth.keysFile.existingSecret or config.auth.jwt.issuers" -}}
{{- end -}}
{{- if and (eq $v.mode "sidecar") (or $v.config.auth.keysFile.existingSecret $v.config.auth.jwt) -}}
{{- fail "config.auth.keysFile and config.auth.jwt are for mode=gateway (a sidecar takes its identity from pod labels)" -}}
{{- end -}}
{{- if and (eq $v.mode "gateway") (eq $v.config.budget.store "sqlite") (or $v.autoscaling.enabled (gt (int $v.replicaCount) 1)) -}}
{{- fail "config.budget.store=sqlite keeps budgets per pod: use redis with more than one replica or autoscaling" -}}
{{- end -}}
{{- if and (eq $v.config.budget.store "redis") (not $v.config.budget.redis.existingSecret) (not $v.config.budget.redis.url) -}}
{{- fail "config.budget.store=redis needs config.budget.redis.existingSecret (or .url)" -}}
{{- end -}}
{{- if and $v.persistence.enabled (or $v.autoscaling.enabled (gt (int $v.replicaCount) 1)) (not (has "ReadWriteMany" $v.persistence.accessModes)) -}}
{{- fail "persistence with a ReadWriteOnce claim allows one replica only" -}}
{{- end -}}
{{- if and $v.sidecar.example.enabled (ne $v.mode "sidecar") -}}
{{- fail "sidecar.example.enabled needs mode=sidecar" -}}
{{- end -}}
{{- end -}}
