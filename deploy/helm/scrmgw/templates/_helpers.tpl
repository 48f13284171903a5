{{- define "scrmgw.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "scrmgw.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* selector labels of one component: (list $ "serve") */}}
{{- define "scrmgw.selector" -}}
app.kubernetes.io/name: {{ (index . 0).Chart.Name }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "scrmgw.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The environment every scrmgw container gets: secrets by reference. */}}
{{- define "scrmgw.env" -}}
{{- $s := .Values.existingSecret -}}
{{- range $k, $v := .Values.env }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- if $s }}
- name: SCRMGW_DATABASE_URL
  valueFrom: {secretKeyRef: {name: {{ $s }}, key: {{ .Values.secretKeys.databaseURL }}}}
- name: SCRMGW_ADMIN_TOKEN
  valueFrom: {secretKeyRef: {name: {{ $s }}, key: {{ .Values.secretKeys.adminToken }}}}
- name: SCRMGW_SECURITY_PHONE_KEY
  valueFrom: {secretKeyRef: {name: {{ $s }}, key: {{ .Values.secretKeys.phoneKey }}}}
{{- if .Values.secretKeys.metricsToken }}
- name: SCRMGW_HTTP_METRICS_TOKEN
  valueFrom: {secretKeyRef: {name: {{ $s }}, key: {{ .Values.secretKeys.metricsToken }}}}
{{- end }}
{{- if .Values.redis.sentinel.enabled }}
{{- if not .Values.redis.sentinel.addrs }}
{{- fail "redis.sentinel.addrs: list the sentinels (host:26379)" }}
{{- end }}
- name: REDIS_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ $s }}, key: {{ .Values.secretKeys.redisPassword }}, optional: true}}
- name: SCRMGW_REDIS_URL
  value: {{ printf "redis-sentinel://:$(REDIS_PASSWORD)@%s/%d?master=%s" (join "," .Values.redis.sentinel.addrs) (int .Values.redis.sentinel.db) .Values.redis.sentinel.masterName | quote }}
{{- else }}
- name: SCRMGW_REDIS_URL
  valueFrom: {secretKeyRef: {name: {{ $s }}, key: {{ .Values.secretKeys.redisURL }}}}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The pod spec fields every scrmgw pod shares. */}}
{{- define "scrmgw.podCommon" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
