"""The runnable lecture, the top floor of jaxgen: `python -m jaxgen.lecture` (`make walkthrough`) reruns
every claim of the lecture on real runs through `jaxgen.cli` in process (walkthrough.py), adds the
measurements no command makes (figures.py; discgen.py, the classifier against the GAN far from the data),
writes walkthrough.json and renders the page from that JSON alone (markdown.py). Nothing else in jaxgen
imports this package.
"""
