from mockcre.cli import main

raise SystemExit(main())
