{{/*
Sidecar mode: the named templates an application chart includes to put the proxy into its pods.
Add this chart as a dependency (values under `llm-policy-proxy:` with mode: sidecar), then:

  {{- $llmpp := dict "Values" (index .Values "llm-policy-proxy") "Release" .Release }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: billing-api   # becomes the identity's app (${APP_NAME})
        team: payments                        # becomes the identity's team (${TEAM})
      annotations:
        {{- include "llm-policy-proxy.sidecarAnnotations" $llmpp | nindent 8 }}
    spec:
      containers:
        - name: app
          env:
            - name: OPENAI_BASE_URL
              value: {{ include "llm-policy-proxy.sidecarBaseUrl" $llmpp }}
        {{- include "llm-policy-proxy.sidecarContainers" $llmpp | nindent 8 }}
      volumes:
        {{- include "llm-policy-proxy.sidecarVolumes" $llmpp | nindent 8 }}

With sidecar.native=true the containers go under initContainers instead (Kubernetes >= 1.29).
*/}}
{{- define "llm-policy-proxy.sidecarContainers" -}}
{{ include "llm-policy-proxy.proxyContainer" . }}
{{- if .Values.opa.sidecar.enabled }}
{{ include "llm-policy-proxy.opaContainer" . }}
{{- end }}
{{- end -}}

{{- define "llm-policy-proxy.sidecarVolumes" -}}
{{ include "llm-policy-proxy.volumes" . }}
{{- end -}}

{{- define "llm-policy-proxy.sidecarAnnotations" -}}
{{ include "llm-policy-proxy.checksums" . }}
{{- end -}}

{{- define "llm-policy-proxy.sidecarBaseUrl" -}}
{{- printf "http://127.0.0.1:%d/v1" (int .Values.containerPort) -}}
{{- end -}}

{{/*
The application side of the lock-down, for any namespace: pods matching the client label may send
traffic only to DNS and the gateway proxy (plus `extraEgress`, e.g. their database). Call it with
(dict "Values" <this chart's values> "Release" <the proxy's release> "namespace" <the apps' namespace>
"extraEgress" <list>).
*/}}
{{- define "llm-policy-proxy.clientNetworkPolicy" -}}
{{- $v := .Values -}}
{{- $np := $v.networkPolicy -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "llm-policy-proxy.fullname" . }}-clients
  namespace: {{ default .Release.Namespace .namespace }}
  labels:
    {{- include "llm-policy-proxy.selectorLabels" . | nindent 4 }}
    app.kubernetes.io/component: client-lockdown
spec:
  podSelector:
    matchLabels:
      {{ $np.clientLabel.key }}: {{ $np.clientLabel.value | quote }}
  policyTypes: [Egress]
  egress:
    - to:
        - namespaceSelector:
            {{- toYaml $np.dns.namespaceSelector | nindent 12 }}
          podSelector:
            {{- toYaml $np.dns.podSelector | nindent 12 }}
      ports:
        - {protocol: UDP, port: 53}
        - {protocol: TCP, port: 53}
    - to:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ .Release.Namespace }}
          podSelector:
            matchLabels:
              {{- include "llm-policy-proxy.selectorLabels" . | nindent 14 }}
      ports:
        - {protocol: TCP, port: {{ $v.containerPort }}}
        {{- if $v.egress.enabled }}
        - {protocol: TCP, port: {{ $v.egress.port }}}
        {{- end }}
    {{- with .extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}
