from hbsdeploy.cli.main import main

main()
