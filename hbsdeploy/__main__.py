from hbsdeploy.cli import main

main()
