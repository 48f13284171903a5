package engine_test

import (
	"fmt"
	"os"
	"time"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/templates"
	"github.com/scrmgw/scrmgw/workflows"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

func ExampleDryRun() {
	reg, err := templates.LoadFS(configs.BuiltinTemplates())
	if err != nil {
		panic(err)
	}
	wf, err := workflows.Load("recall.yaml", []byte(`name: recall
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
    via: guide
`), workflows.Options{Templates: reg})
	if err != nil {
		panic(err)
	}
	member := engine.MemberFixture{ID: 1, Name: "Lily", Channel: "wecom", GuideID: "g1", GuideName: "小王", StoreName: "静安店",
		OpeningHours: "10:00-22:00", StoreTimeZone: "Asia/Shanghai"}
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	joined := time.Date(2025, 3, 3, 22, 30, 0, 0, shanghai)
	timeline, err := engine.DryRun(engine.DryRunOptions{Templates: reg}, wf, member, nil, joined)
	if err != nil {
		panic(err)
	}
	if err := engine.WriteTimeline(os.Stdout, timeline); err != nil {
		fmt.Println(err)
	}
	// Output:
	// 2025-03-03 22:30:00 CST  trigger                      member.joined happens
	// 2025-03-03 22:30:00 CST  trigger                      run starts on version 31c21c823cf99132
	// 2025-03-03 22:30:00 CST  wait_3d (wait)               waits until 2025-03-06 22:30:00
	// 2025-03-06 22:30:00 CST  recall (send)                held by the send rules until 2025-03-07 09:04:28
	// 2025-03-07 09:04:28 CST  recall (send)                sends recall on wecom through guide 小王 (a task asks them to confirm)
	//     [wecom text, zh/default]
	//     | Lily好，我是静安店的小王。店里这周到了不少新款，想着您可能会喜欢，
	//     | 有空来静安店坐坐，我帮您挑几件试试？（营业时间 10:00-22:00）
	// 2025-03-07 09:04:28 CST  end                          run ends (done)
}
