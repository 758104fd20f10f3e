from mockcre.faces.cli import main

raise SystemExit(main())
