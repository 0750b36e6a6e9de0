{{/*
The pod parts shared by the gateway Deployment and the sidecar templates. Each takes a context with
.Values and .Release. Volume names carry an llmpp- prefix so they never clash with an application's.
*/}}
{{- define "llm-policy-proxy.proxyContainer" -}}
{{- $v := .Values -}}
{{- $sidecar := eq $v.mode "sidecar" -}}
{{- $fullname := include "llm-policy-proxy.fullname" . -}}
- name: llm-policy-proxy
  image: {{ include "llm-policy-proxy.image" . }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if and $sidecar $v.sidecar.native }}
  restartPolicy: Always
  {{- end }}
  args:
    - serve
    - --config
    - {{ include "llm-policy-proxy.configPath" . }}
    - --workers
    - {{ $v.workers | quote }}
  ports:
    - name: http
      containerPort: {{ $v.containerPort }}
      protocol: TCP
    {{- if $v.egress.enabled }}
    - name: egress
      containerPort: {{ $v.egress.port }}
      protocol: TCP
    {{- end }}
  env:
    - name: TMPDIR
      value: /tmp
    {{- if gt (int $v.workers) 1 }}
    - name: PROMETHEUS_MULTIPROC_DIR
      value: /var/run/llm-policy-proxy/metrics
    {{- end }}
    {{- if $sidecar }}
    - name: APP_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.labels['{{ $v.sidecar.identity.appLabel }}']
    - name: TEAM
      valueFrom:
        fieldRef:
          fieldPath: metadata.labels['{{ $v.sidecar.identity.teamLabel }}']
    {{- end }}
    {{- range $name, $u := $v.config.upstreams }}
    {{- if and $u.apiKey $u.apiKey.existingSecret }}
    - name: {{ include "llm-policy-proxy.upstreamKeyEnv" $name }}
      valueFrom:
        secretKeyRef:
          name: {{ $u.apiKey.existingSecret }}
          key: {{ $u.apiKey.key }}
    {{- end }}
    {{- end }}
    {{- if eq $v.config.budget.store "redis" }}
    - name: REDIS_URL
      {{- if $v.config.budget.redis.existingSecret }}
      valueFrom:
        secretKeyRef:
          name: {{ $v.config.budget.redis.existingSecret }}
          key: {{ $v.config.budget.redis.key }}
      {{- else }}
      value: {{ $v.config.budget.redis.url | quote }}
      {{- end }}
    {{- end }}
    {{- if $v.otel.endpoint }}
    - name: K8S_POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    - name: K8S_NAMESPACE
      valueFrom:
        fieldRef:
          fieldPath: metadata.namespace
    - name: K8S_NODE_NAME
      valueFrom:
        fieldRef:
          fieldPath: spec.nodeName
    - name: OTEL_EXPORTER_OTLP_ENDPOINT
      value: {{ $v.otel.endpoint | quote }}
    - name: OTEL_EXPORTER_OTLP_PROTOCOL
      value: {{ $v.otel.protocol | quote }}
    - name: OTEL_SERVICE_NAME
      value: {{ $v.otel.serviceName | quote }}
    {{- with $v.otel.sampler }}
    - name: OTEL_TRACES_SAMPLER
      value: {{ . | quote }}
    {{- end }}
    {{- with $v.otel.samplerArg }}
    - name: OTEL_TRACES_SAMPLER_ARG
      value: {{ . | quote }}
    {{- end }}
    - name: OTEL_RESOURCE_ATTRIBUTES
      {{- $attrs := list "k8s.pod.name=$(K8S_POD_NAME)" "k8s.namespace.name=$(K8S_NAMESPACE)" "k8s.node.name=$(K8S_NODE_NAME)" }}
      {{- range $key, $value := $v.otel.resourceAttributes }}
      {{- $attrs = append $attrs (printf "%s=%s" $key $value) }}
      {{- end }}
      value: {{ join "," $attrs | quote }}
    {{- end }}
    {{- with $v.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if $sidecar }}
  {{- /* Bound to 127.0.0.1, so the kubelet cannot reach it over HTTP: probe from inside. */}}
  {{- $probe := printf "import urllib.request; urllib.request.urlopen('http://127.0.0.1:%d%%s', timeout=2)" (int $v.containerPort) }}
  startupProbe:
    exec:
      command: ["python", "-c", {{ printf $probe "/healthz" | quote }}]
    periodSeconds: 2
    failureThreshold: 30
  livenessProbe:
    exec:
      command: ["python", "-c", {{ printf $probe "/healthz" | quote }}]
    periodSeconds: 20
    timeoutSeconds: 5
    failureThreshold: 3
  readinessProbe:
    exec:
      command: ["python", "-c", {{ printf $probe "/readyz" | quote }}]
    periodSeconds: 10
    timeoutSeconds: 5
    failureThreshold: 3
  {{- else }}
  startupProbe:
    httpGet:
      path: /healthz
      port: http
    periodSeconds: 2
    failureThreshold: 30
  livenessProbe:
    httpGet:
      path: /healthz
      port: http
    periodSeconds: 10
    timeoutSeconds: 3
    failureThreshold: 3
  readinessProbe:
    httpGet:
      path: /readyz
      port: http
    periodSeconds: 5
    timeoutSeconds: 3
    failureThreshold: 2
  {{- end }}
  lifecycle:
    preStop:
      exec:
        command: ["sleep", {{ $v.preStopSleepSeconds | quote }}]
  resources:
    {{- toYaml $v.resources | nindent 4 }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  volumeMounts:
    - name: llmpp-config
      mountPath: /etc/llm-policy-proxy/config
      readOnly: true
    {{- if include "llm-policy-proxy.policiesFromChart" . }}
    - name: llmpp-policies
      mountPath: {{ include "llm-policy-proxy.policyPath" . }}
      readOnly: true
    {{- end }}
    {{- if and (ne $v.mode "sidecar") $v.config.auth.keysFile.existingSecret }}
    - name: llmpp-keys
      mountPath: {{ include "llm-policy-proxy.keysPath" . }}
      readOnly: true
    {{- end }}
    - name: llmpp-state
      mountPath: {{ include "llm-policy-proxy.statePath" . }}
    - name: llmpp-tmp
      mountPath: /tmp
    {{- if gt (int $v.workers) 1 }}
    - name: llmpp-metrics
      mountPath: /var/run/llm-policy-proxy/metrics
    {{- end }}
{{- end -}}

{{- define "llm-policy-proxy.opaContainer" -}}
{{- $v := .Values -}}
{{- $bundle := eq $v.policies.source "bundle" -}}
- name: opa
  image: {{ printf "%s:%s" $v.opa.image.repository $v.opa.image.tag }}
  imagePullPolicy: {{ $v.opa.image.pullPolicy }}
  {{- if and (eq $v.mode "sidecar") $v.sidecar.native }}
  restartPolicy: Always
  {{- end }}
  args:
    - run
    - --server
    {{- /* The API (which can replace policies) stays on loopback; only /health and /metrics are exposed. */}}
    - --addr=127.0.0.1:8181
    - --diagnostic-addr=0.0.0.0:{{ $v.opa.diagnosticPort }}
    - --config-file=/etc/opa/config.yaml
    - --log-format=json
    - --log-level={{ $v.opa.logLevel }}
    {{- if not $bundle }}
    - --watch
    {{- /* .* skips the kubelet's ..data folders; data/ is its own root so documents land at data.<key>. */}}
    - --ignore=.*
    - --ignore=*_test.rego
    - --ignore=data
    - --ignore=schema
    - /policies
    - /policies/data
    {{- end }}
  ports:
    - name: opa-diag
      containerPort: {{ $v.opa.diagnosticPort }}
      protocol: TCP
  livenessProbe:
    httpGet:
      path: /health
      port: opa-diag
    periodSeconds: 10
    timeoutSeconds: 3
  readinessProbe:
    httpGet:
      path: {{ ternary "/health?bundles" "/health" $bundle }}
      port: opa-diag
    periodSeconds: 5
    timeoutSeconds: 3
  resources:
    {{- toYaml $v.opa.resources | nindent 4 }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  volumeMounts:
    - name: llmpp-opa-config
      mountPath: /etc/opa
      readOnly: true
    {{- if not $bundle }}
    - name: llmpp-policies
      mountPath: /policies
      readOnly: true
    {{- end }}
{{- end -}}

{{- define "llm-policy-proxy.volumes" -}}
{{- $v := .Values -}}
{{- $fullname := include "llm-policy-proxy.fullname" . -}}
- name: llmpp-config
  configMap:
    name: {{ $fullname }}-config
{{- if include "llm-policy-proxy.policiesFromChart" . }}
- name: llmpp-policies
  projected:
    sources:
      - configMap:
          name: {{ $fullname }}-policies
      - configMap:
          name: {{ $fullname }}-policy-data
          items:
            {{- range (include "llm-policy-proxy.policyDataFiles" . | fromYamlArray) }}
            - key: {{ . }}
              path: data/{{ . }}
            {{- end }}
{{- end }}
{{- if and (ne $v.mode "sidecar") $v.config.auth.keysFile.existingSecret }}
{{- /* A whole-directory mount (not subPath), so the kubelet's updates reach the file and the proxy reloads it. */}}
- name: llmpp-keys
  secret:
    secretName: {{ $v.config.auth.keysFile.existingSecret }}
    items:
      - key: {{ $v.config.auth.keysFile.key }}
        path: {{ $v.config.auth.keysFile.key }}
{{- end }}
{{- if $v.opa.sidecar.enabled }}
- name: llmpp-opa-config
  configMap:
    name: {{ $fullname }}-opa
{{- end }}
- name: llmpp-state
  {{- if and $v.persistence.enabled (ne $v.mode "sidecar") }}
  persistentVolumeClaim:
    claimName: {{ default (printf "%s-state" $fullname) $v.persistence.existingClaim }}
  {{- else }}
  emptyDir: {}
  {{- end }}
- name: llmpp-tmp
  emptyDir:
    sizeLimit: {{ $v.tmpSizeLimit }}
{{- if gt (int $v.workers) 1 }}
- name: llmpp-metrics
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
{{- end }}
{{- end -}}

{{/* Pod annotations that roll the pods when their config changes. */}}
{{- define "llm-policy-proxy.checksums" -}}
checksum/config: {{ include "llm-policy-proxy.configDocument" . | sha256sum }}
{{- if and .Values.policies.rollOnChange (include "llm-policy-proxy.policiesFromChart" .) }}
checksum/policies: {{ include "llm-policy-proxy.policyDigest" . }}
{{- end }}
{{- if .Values.opa.sidecar.enabled }}
checksum/opa: {{ include "llm-policy-proxy.opaConfig" . | sha256sum }}
{{- end }}
{{- end -}}
