from lakesql.cli.main import main

main()
