from lab.lifecycle import main

raise SystemExit(main())
