package dingtalkfake_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/open-dingtalk/dingtalk-stream-sdk-go/chatbot"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/client"

	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
)

// A stream client pointed at the fake gateway gets a bot message and acks
// it. Closing the gateway stops the client (see sdk_test.go for why the
// client's own Close is best left alone).
func ExampleGateway() {
	gw := dingtalkfake.New(nil)
	defer gw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	handled := make(chan string, 1)
	cli := client.NewStreamClient(
		client.WithAppCredential(client.NewAppCredentialConfig(gw.ClientID(), gw.ClientSecret())),
		client.WithOpenApiHost(gw.URL()),
		client.WithAutoReconnect(false),
	)
	cli.RegisterChatBotCallbackRouter(func(_ context.Context, m *chatbot.BotCallbackDataModel) ([]byte, error) {
		handled <- m.SenderStaffId + ": " + m.Text.Content
		return nil, nil
	})
	if err := cli.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}

	id := gw.PushBotMessage(dingtalkfake.BotMessage{
		ConversationID: "cidMember01==",
		SenderStaffID:  "staff01",
		Text:           &dingtalkfake.Text{Content: "where is the nearest store?"},
	})
	fmt.Println(<-handled)
	ack, err := gw.WaitAck(ctx, id)
	fmt.Println(ack.Code, err)
	// Output:
	// staff01: where is the nearest store?
	// 200 <nil>
}

// The OpenAPI fake throttles the next call on request.
func ExampleOpenAPI_FailNext() {
	api := dingtalkfake.NewOpenAPI(nil)
	defer api.Close()
	api.FailNext(1, dingtalkfake.Failure{Status: http.StatusForbidden, Code: dingtalkfake.CodeQPSLimitForAPI})

	resp, err := http.Post(api.URL()+dingtalkfake.PathAccessToken, "application/json",
		strings.NewReader(`{"appKey":"dingfakeclientid0001","appSecret":"fake-client-secret"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("token:", resp.StatusCode)

	send := func() int {
		req, _ := http.NewRequest(http.MethodPost, api.URL()+dingtalkfake.PathGroupSend, strings.NewReader(
			`{"robotCode":"dingfakeclientid0001","openConversationId":"cidGroup01==","msgKey":"sampleText","msgParam":"{\"content\":\"hi\"}"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(dingtalkfake.AccessTokenHeader, "not-a-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	fmt.Println("first send:", send())  // throttled before the token is looked at
	fmt.Println("second send:", send()) // the token is checked
	// Output:
	// token: 200
	// first send: 403
	// second send: 400
}
