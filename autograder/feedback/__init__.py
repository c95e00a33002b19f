"""What people read: feedback cells, the class report, the integrity report, safe terminal and pages."""
