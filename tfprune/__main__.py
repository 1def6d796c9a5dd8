from tfprune.cli import run

run()
