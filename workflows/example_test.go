package workflows_test

import (
	"fmt"
	"time"

	"github.com/scrmgw/scrmgw/templates"
	"github.com/scrmgw/scrmgw/workflows"
)

func ExampleLoad() {
	reg, err := templates.LoadDir("../configs/templates")
	if err != nil {
		panic(err)
	}
	src := `name: recall
trigger:
  event: member.joined
entry:
  brand: camellia
goal: purchase.completed
steps:
  - id: wait_3d
    wait: 3d
  - id: recall
    send: recall
    channel: wecomm
`
	_, err = workflows.Load("recall.yaml", []byte(src), workflows.Options{Templates: reg, Channels: []string{"wecom", "dingtalk"}})
	fmt.Println(err)

	w, err := workflows.Load("recall.yaml", []byte(src[:len(src)-len("    channel: wecomm\n")]), workflows.Options{Templates: reg, Channels: []string{"wecom", "dingtalk"}})
	if err != nil {
		panic(err)
	}
	for _, s := range w.Steps {
		fmt.Println(s.ID, s.Kind, s.Transitions())
	}
	// Output:
	// recall.yaml:12:14: steps[1].channel: unknown channel "wecomm" (did you mean "wecom"?)
	// wait_3d wait [{next recall}]
	// recall send [{next end}]
}

func ExampleSendRules_SendTime() {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	rules := workflows.SendRules{QuietHours: &workflows.DefaultQuietHours}
	due := time.Date(2024, 5, 1, 23, 15, 0, 0, shanghai)
	fmt.Println(rules.SendTime(due, shanghai))
	// Output:
	// 2024-05-02 09:00:00 +0800 CST
}
