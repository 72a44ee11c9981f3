from robustlens.cli import main

main()
