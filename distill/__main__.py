from distill.cli import app

app(prog_name="python -m distill")
