package main

import (
	_ "github.com/composeci/composeci/fedfind"
	_ "github.com/composeci/composeci/fedfind/koji"
	_ "github.com/composeci/composeci/openqa"
	_ "github.com/composeci/composeci/reports"
	_ "github.com/composeci/composeci/stages"
	_ "github.com/composeci/composeci/triage"
	_ "github.com/spf13/cobra"
)

func main() {}
