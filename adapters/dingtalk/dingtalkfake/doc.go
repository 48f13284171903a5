// Package dingtalkfake fakes the two DingTalk services the dingtalk adapter
// talks to, speaking their real wire protocols, so the adapter (or the real
// github.com/open-dingtalk/dingtalk-stream-sdk-go client) can be tested
// without a network.
//
// # Stream gateway
//
// [Gateway] is the stream-mode gateway. A client registers with
//
//	POST /v1.0/gateway/connections/open
//	{"clientId", "clientSecret", "subscriptions": [{"type", "topic"}], "ua", "localIp", "extras"}
//
// and gets {"endpoint", "ticket"} back (401 {"code":"authFailed"} on bad
// credentials). It then dials the WebSocket endpoint?ticket=...; a ticket
// is good for one connection and 90 seconds. Frames pushed to the client
// are JSON text messages
//
//	{"specVersion":"1.0", "type":"CALLBACK"|"EVENT"|"SYSTEM",
//	 "headers":{"topic", "messageId", "contentType", "time", ...}, "data":"<JSON as a string>"}
//
// and the client answers every frame that carries a messageId with an ack
//
//	{"code":200, "headers":{"messageId", "contentType":"application/json"}, "message", "data"}
//
// Bot messages are CALLBACK frames on topic /v1.0/im/bot/messages/get.
// Events (contact changes and the like) are EVENT frames on topic "*" with
// eventType, eventId, eventCorpId, eventBornTime and eventUnifiedAppId
// headers; their ack data is {"status":"SUCCESS"|"LATER", "message"}.
// SYSTEM frames are "ping" (data {"opaque"}; the ack echoes the data) and
// "disconnect" (data {"reason"}; no ack; the gateway closes the connection
// a grace period later).
//
// The gateway only pushes a frame to a connection that subscribed to its
// type and topic. By default it keeps one frame in flight per connection and
// waits for its ack (or [WithAckTimeout]) before sending the next: the Go
// SDK v0.9.1 handles every frame in a goroutine of its own and writes the
// ack from there without a lock, so two frames in flight at once can make
// it write to its WebSocket concurrently (gorilla/websocket then panics,
// the SDK recovers and the ack is lost). [WithMaxInFlight] lifts the limit
// for clients that cope. Even one at a time, the race detector reports the
// SDK's acks of two frames on one connection as a data race (nothing
// orders one frame goroutine's write after the other's), so tests that run
// the real SDK under -race can only have one acked frame per connection.
//
// A frame that was not acked when its connection went away is delivered
// again, in push order, on the next connection, so a test can check that
// nothing is lost across [Gateway.Drop] and reconnects. Frames pushed while
// no client is connected wait for one. [Gateway.Redeliver] delivers an
// acked frame again, as the real gateway may do.
//
// # OpenAPI
//
// [OpenAPI] fakes the api.dingtalk.com endpoints used to send robot
// messages: POST /v1.0/oauth2/accessToken, POST
// /v1.0/robot/oToMessages/batchSend and POST /v1.0/robot/groupMessages/send
// (access token in the x-acs-dingtalk-access-token header), plus the
// sessionWebhook URLs that bot messages carry for replies. Errors have the
// OpenAPI shape: an HTTP 4xx status and {"code", "requestid", "message"}.
// The send endpoints check msgKey and msgParam as DingTalk does: msgKey
// one of its message templates (sampleText, sampleMarkdown, sampleLink,
// sampleActionCard, sampleImageMsg, sampleFile, sampleAudio; else
// invalidParameter.msgKey.invalid), msgParam a JSON object in a string
// (else invalidParameter.msgParam.invalid) with the template's required
// parameters set (else miss.param.<type>To<param>, as for a markdown
// without title) and, stricter than DingTalk, no parameter the template
// lacks. Session webhooks check {"msgtype", <msgtype>: {...}} alike
// (text, markdown, link, actionCard), answering errcodes in a 200.
// [OpenAPI.FailNext] makes the next calls fail (for throttling and
// authentication errors), [OpenAPI.FailRandomly] a share of all calls
// (QPS limit, 502, 504), [OpenAPI.MarkInvalidUsers] and
// [OpenAPI.MarkFlowControlled] shape the per-user result lists of batchSend,
// and everything sent is recorded for inspection.
//
// [WithOpenAPI] serves the OpenAPI endpoints on the gateway's host too, as
// api.dingtalk.com serves both, for code that has a single API base URL.
package dingtalkfake
