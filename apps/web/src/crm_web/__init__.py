"""The sales cockpit: a server-rendered web app in Danish over the services ' HTTP APIs."""
