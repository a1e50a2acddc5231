from fr_tui.cli import main

raise SystemExit(main())
